"""A steady load in a thread while something else happens: a rollout, a fault, a node drained.

`concurrency` clients send a list of calls in turn, back to back, until
stopped, and a tally counts statuses, X-Cache values and every failure with
what was sent. The suite's rollout and drill tests and the rollout and
multi-node benchmarks watch a change through it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType

import httpx

from harness.load import Call, LoadError, Outcome, send


@dataclass
class LoadTally:
    total: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    caches: Counter[str] = field(default_factory=Counter)  # X-Cache of the searches
    failures: list[str] = field(default_factory=list)
    # Requests sent a second time because the first went unanswered (see `resend`).
    resent: list[str] = field(default_factory=list)


class BackgroundLoad:
    """`concurrency` clients send `calls` in turn, back to back, in a thread, until stopped.

    Bounded in time whatever happens. A failure is any answer but 200, or a
    transport error; each is kept with what was sent. With `resend`, a request
    whose kept-alive connection closed before any answer is sent once more, as
    browsers do; such resends are kept apart and the second outcome counts.
    """

    def __init__(
        self,
        base_url: str,
        calls: Sequence[Call],
        *,
        concurrency: int = 16,
        max_seconds: float = 300,
        timeout: float = 30,
        resend: bool = False,
    ) -> None:
        if not calls:
            raise ValueError("BackgroundLoad needs at least one call")
        self.base_url = base_url
        self.calls = list(calls)
        self.concurrency = concurrency
        self.max_seconds = max_seconds
        self.timeout = timeout
        self.resend = resend
        self.tally = LoadTally()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._crash: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def total(self) -> int:
        with self._lock:
            return self.tally.total

    @property
    def failed(self) -> int:
        with self._lock:
            return len(self.tally.failures)

    @property
    def resent(self) -> int:
        with self._lock:
            return len(self.tally.resent)

    def caches(self) -> Counter[str]:
        with self._lock:
            return Counter(self.tally.caches)

    def _record(self, outcome: Outcome) -> None:
        with self._lock:
            self.tally.total += 1
            if outcome.status is not None:
                self.tally.statuses[outcome.status] += 1
            if outcome.cache is not None:
                self.tally.caches[outcome.cache] += 1
            if outcome.status != 200:
                reason = outcome.failure or f"HTTP {outcome.status} {outcome.error_code or ''}"
                self.tally.failures.append(f"{outcome.call.method} {outcome.call.path}: {reason}")

    async def _client_loop(self, client: httpx.AsyncClient, offset: int, deadline: float) -> None:
        # Client n sends calls n, n + concurrency, ...: together, each call once per cycle.
        index = offset
        while not self._stop.is_set() and time.monotonic() < deadline:
            call = self.calls[index % len(self.calls)]
            outcome = await send(client, call)
            if outcome.unanswered and self.resend:
                with self._lock:
                    self.tally.resent.append(f"{call.method} {call.path}: {outcome.failure}")
                outcome = await send(client, call)
            self._record(outcome)
            index += self.concurrency

    async def _main(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        limits = httpx.Limits(max_connections=self.concurrency)
        async with httpx.AsyncClient(
            base_url=self.base_url, timeout=self.timeout, limits=limits
        ) as client:
            await asyncio.gather(
                *(self._client_loop(client, n, deadline) for n in range(self.concurrency))
            )

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:  # re-raised by wait_for and __exit__: never a quiet tally
            self._crash = error

    def _raise_if_crashed(self) -> None:
        if self._crash is not None:
            raise LoadError(f"the load generator crashed: {self._crash!r}") from self._crash

    def wait_for(self, requests: int, timeout: float = 120) -> None:
        """Block until at least `requests` requests have completed in all."""
        deadline = time.monotonic() + timeout
        while self.total < requests:
            if time.monotonic() > deadline or not self._thread.is_alive():
                self._raise_if_crashed()
                raise LoadError(f"only {self.total} of {requests} requests completed")
            time.sleep(0.02)

    def __enter__(self) -> BackgroundLoad:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout + 10)
        if exc_type is None:
            self._raise_if_crashed()
