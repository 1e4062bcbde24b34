"""A circuit breaker for one dependency.

Written here rather than taken from a library: pybreaker is synchronous (its
async path needs Tornado) and the asyncio breakers on PyPI are unmaintained.
What is needed is small: count consecutive failures, refuse calls for a
cool-down once a threshold is crossed, then let one trial call through.
"""

from __future__ import annotations

import time
from enum import StrEnum


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(self, *, failure_threshold: int = 5, reset_after_seconds: float = 30.0) -> None:
        self.failure_threshold = failure_threshold
        self.reset_after_seconds = reset_after_seconds
        self._consecutive_failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:
            return CircuitState.CLOSED
        if time.monotonic() - self._opened_at >= self.reset_after_seconds:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def seconds_until_retry(self) -> int:
        if self._opened_at is None:
            return 0
        remaining = self.reset_after_seconds - (time.monotonic() - self._opened_at)
        return max(1, int(remaining + 0.999))

    def allow(self) -> bool:
        """Whether a call may go out now. In half-open state only one trial goes."""
        state = self.state
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.HALF_OPEN and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self._consecutive_failures = 0
        self._opened_at = None
        self._trial_in_flight = False

    def record_failure(self) -> None:
        self._trial_in_flight = False
        self._consecutive_failures += 1
        if self._opened_at is not None or self._consecutive_failures >= self.failure_threshold:
            self._opened_at = time.monotonic()

    def release_trial(self) -> None:
        """A trial call ended without saying anything about health (e.g. a 4xx)."""
        self._trial_in_flight = False
