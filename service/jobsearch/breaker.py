"""A circuit breaker for one dependency.

Written here rather than taken from a library: pybreaker is synchronous (its
async path needs Tornado) and the asyncio breakers on PyPI are unmaintained.
What is needed is small: count consecutive failures, refuse calls for a
cool-down once a threshold is crossed, then let one trial call through.

A trial must end, or the dependency stays refused for good: each call that
`allow()` lets through runs inside `guard()`, which ends the trial however the
call ends (an exception nobody planned for counts as a failure, a cancelled
call as no verdict), and a trial that has been out for longer than
`trial_timeout_seconds` is deemed lost and the next call becomes the trial.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        reset_after_seconds: float = 30.0,
        trial_timeout_seconds: float = 60.0,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_after_seconds = reset_after_seconds
        self.trial_timeout_seconds = trial_timeout_seconds
        self._consecutive_failures = 0
        self._opened_at: float | None = None
        # The number of the trial call in flight, and when it went out.
        self._trial: int | None = None
        self._trial_started_at = 0.0
        self._trials = 0

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
        if state is CircuitState.HALF_OPEN and not self._trial_pending():
            self._trials += 1
            self._trial = self._trials
            self._trial_started_at = time.monotonic()
            return True
        return False

    def _trial_pending(self) -> bool:
        if self._trial is None:
            return False
        if time.monotonic() - self._trial_started_at >= self.trial_timeout_seconds:
            self._trial = None  # lost: its call never reported back
            return False
        return True

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Around a call that `allow()` let through: if that call was the trial and
        ends without recording an outcome, the trial ends here."""
        trial = self._trial
        try:
            yield
        except Exception:
            if trial is not None and self._trial == trial:
                self.record_failure()
            raise
        finally:
            if trial is not None and self._trial == trial:
                self.release_trial()

    def record_success(self) -> None:
        self._consecutive_failures = 0
        self._opened_at = None
        self._trial = None

    def record_failure(self) -> None:
        self._trial = None
        self._consecutive_failures += 1
        if self._opened_at is not None or self._consecutive_failures >= self.failure_threshold:
            self._opened_at = time.monotonic()

    def release_trial(self) -> None:
        """A trial call ended without saying anything about health (e.g. a 4xx)."""
        self._trial = None
