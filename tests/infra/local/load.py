"""A steady, bounded HTTP load on 127.0.0.1, counting every failed request."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType

import httpx

# What httpx says when a kept-alive connection was closed before any byte of
# the answer came back. Caddy closes idle client connections when it reloads
# its configuration; a request sent on one at that instant meets this, or,
# when the request reached the socket a moment after Caddy closed it, a reset
# (httpx's ReadError). Both are the race RFC 9112, 9.3.1 tells clients to
# absorb by resending an idempotent request, which browsers and Go's client do.
_CLOSED_BEFORE_ANSWER = "Server disconnected without sending a response."


def _closed_before_answer(error: httpx.HTTPError) -> bool:
    if isinstance(error, httpx.RemoteProtocolError):
        return str(error) == _CLOSED_BEFORE_ANSWER
    return isinstance(error, httpx.ReadError)


@dataclass
class LoadResult:
    total: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    # GETs sent again once, as browsers and Go's client do on their own
    # (RFC 9112, 9.3.1), after their kept-alive connection closed unanswered.
    retried: int = 0


class SteadyLoad:
    """`concurrency` clients GET `url` back to back, in a thread, until stopped.

    Bounded in time and count whatever happens, so it always ends by itself.
    A failure is any answer but 200, or any transport error, except that a GET
    whose kept-alive connection closed (or was reset) before any answer is sent
    once more, as any HTTP client does; such retries are counted apart and their outcome
    counts like any other request's.
    """

    def __init__(
        self,
        url: str,
        *,
        concurrency: int = 8,
        max_seconds: float = 180,
        max_requests: int = 200_000,
    ) -> None:
        self.url = url
        self.concurrency = concurrency
        self.max_seconds = max_seconds
        self.max_requests = max_requests
        self.result = LoadResult()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def total(self) -> int:
        with self._lock:
            return self.result.total

    def _record(self, status: int | None, failure: str | None, *, retried: bool = False) -> None:
        with self._lock:
            self.result.total += 1
            self.result.retried += retried
            if status is not None:
                self.result.statuses[status] += 1
            if failure is not None:
                self.result.failures.append(failure)

    async def _client_loop(self, client: httpx.AsyncClient, deadline: float) -> None:
        while not self._stop.is_set() and time.monotonic() < deadline:
            if self.total >= self.max_requests:
                return
            retried = False
            try:
                try:
                    response = await client.get(self.url)
                except (httpx.RemoteProtocolError, httpx.ReadError) as error:
                    if not _closed_before_answer(error):
                        raise
                    retried = True
                    response = await client.get(self.url)
            except httpx.HTTPError as error:
                self._record(None, f"{type(error).__name__}: {error}", retried=retried)
                continue
            failure = None if response.status_code == 200 else f"HTTP {response.status_code}"
            self._record(response.status_code, failure, retried=retried)

    async def _main(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        limits = httpx.Limits(max_connections=self.concurrency)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            await asyncio.gather(
                *(self._client_loop(client, deadline) for _ in range(self.concurrency))
            )

    def _run(self) -> None:
        asyncio.run(self._main())

    def wait_for(self, requests: int, timeout: float = 60) -> None:
        """Block until at least `requests` requests have completed in all."""
        deadline = time.monotonic() + timeout
        while self.total < requests:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise TimeoutError(f"only {self.total} of {requests} requests completed")
            time.sleep(0.05)

    def __enter__(self) -> SteadyLoad:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
