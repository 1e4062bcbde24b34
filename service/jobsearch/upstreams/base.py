"""What every paid job API client shares: bounded time, retries and a circuit breaker.

Time bounds: each attempt is bounded by UPSTREAM_TIMEOUT_SECONDS as a whole
(connect, send and the entire body, so a trickling body cannot hold a
request), and one search with its retries by three times that.

Retries: only where a retry cannot cost a second paid call for nothing: a
connection that never opened, a 5xx, or a 429 rate limit (after its
Retry-After). A timeout after the request was sent is not retried: the
upstream may have done, and billed, the work.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

import httpx
from pydantic import ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base

from jobsearch.breaker import CircuitBreaker
from jobsearch.context import current_facts
from jobsearch.errors import (
    UpstreamCircuitOpen,
    UpstreamError,
    UpstreamMalformed,
    UpstreamQuotaExhausted,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamServerError,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from jobsearch.logging_setup import get_logger
from jobsearch.metrics import CIRCUIT_OPEN, UPSTREAM_CALLS, UPSTREAM_QUOTA_REMAINING

log = get_logger(__name__)
T = TypeVar("T")

MAX_ATTEMPTS = 3
# Retry-After beyond this is not waited out inside a search; it is passed on to the client.
QUOTA_RETRY_AFTER_SECONDS = 3600
DEFAULT_RETRY_AFTER_SECONDS = 30


class _Retryable(Exception):
    """Wraps an error that a new attempt may fix."""

    def __init__(self, error: UpstreamError) -> None:
        super().__init__(error.code)
        self.error = error


_COUNT = re.compile(r"[0-9]{1,12}")


def parse_count(value: str | None) -> int | None:
    """A header's non-negative whole number, or None when it is anything else."""
    if value is None:
        return None
    value = value.strip()
    return int(value) if _COUNT.fullmatch(value) else None


def parse_retry_after(value: str | None) -> int | None:
    """Retry-After as whole seconds, from either of its two forms."""
    if not value:
        return None
    value = value.strip()
    seconds = parse_count(value)
    if seconds is not None:
        return seconds
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0, int((moment - datetime.now(UTC)).total_seconds() + 0.999))


class _StopBeforeDeadline(stop_base):
    """Stop when the next attempt could not start before the search's deadline."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        return time.monotonic() + retry_state.upcoming_sleep >= self.deadline - 0.05


class UpstreamClient:
    """Base of the per-source clients. Subclasses build requests and parse answers."""

    source: ClassVar[str]

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        timeout_seconds: float,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.http = http
        self.timeout_seconds = timeout_seconds
        # A trial (one attempt at most: a failure ends it) outliving twice the
        # attempt bound has been lost, and the next call becomes the trial.
        self.breaker = breaker or CircuitBreaker(trial_timeout_seconds=2 * timeout_seconds)
        # As the upstream last reported it (RapidAPI's x-ratelimit-requests-remaining).
        self.quota_remaining: int | None = None

    async def aclose(self) -> None:
        await self.http.aclose()

    async def send(self, request: httpx.Request, parse: Callable[[Any], T]) -> T:
        """Send with retries and return `parse` of the JSON body, or raise an UpstreamError."""
        if not self.breaker.allow():
            UPSTREAM_CALLS.labels(self.source, "circuit_open").inc()
            raise UpstreamCircuitOpen(retry_after=self.breaker.seconds_until_retry())
        deadline = time.monotonic() + MAX_ATTEMPTS * self.timeout_seconds
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(_Retryable),
            stop=stop_after_attempt(MAX_ATTEMPTS) | _StopBeforeDeadline(deadline),
            wait=self._wait,
            reraise=True,
        )
        try:
            # The guard ends a half-open trial however this call ends.
            with self.breaker.guard():
                async with asyncio.timeout(deadline - time.monotonic()):
                    async for attempt in retrying:
                        with attempt:
                            return await self._attempt(request, parse)
        except _Retryable as retryable:
            raise retryable.error from None
        except TimeoutError:
            # Only reached if a wait overran the deadline; the attempts bound themselves.
            raise UpstreamTimeout() from None
        finally:
            CIRCUIT_OPEN.labels(self.source).set(1 if self.breaker.state != "closed" else 0)
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _wait(self, retry_state: RetryCallState) -> float:
        backoff = wait_exponential_jitter(multiplier=0.2, max=2.0, jitter=0.3)(retry_state)
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, _Retryable) and error.error.retry_after is not None:
            return float(error.error.retry_after)
        return float(backoff)

    async def _attempt(self, request: httpx.Request, parse: Callable[[Any], T]) -> T:
        facts = current_facts()
        facts.upstream_attempts += 1
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout_seconds):
                response = await self.http.send(request)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            self._record("connect_error", healthy=False)
            raise _Retryable(UpstreamUnreachable()) from None
        except (TimeoutError, httpx.TimeoutException):
            self._record("timeout", healthy=False)
            raise UpstreamTimeout() from None
        except httpx.DecodingError:
            # A body its own Content-Encoding cannot decode: unreadable data.
            self._record("malformed", healthy=False)
            log.warning("upstream_undecodable_body", source=self.source)
            raise UpstreamMalformed() from None
        except httpx.HTTPError as exc:
            # Any other failure of the exchange (transport, protocol, too many redirects).
            self._record("transport_error", healthy=False)
            log.warning("upstream_transport_error", source=self.source, error=type(exc).__name__)
            raise UpstreamServerError() from None
        finally:
            elapsed_ms = round((time.monotonic() - started) * 1000, 1)
            log.debug("upstream_attempt", source=self.source, elapsed_ms=elapsed_ms)
        self._note_quota(response.headers)
        return self._interpret(response, parse)

    def _interpret(self, response: httpx.Response, parse: Callable[[Any], T]) -> T:
        status = response.status_code
        if status >= 500:
            self._record("server_error", healthy=False)
            raise _Retryable(UpstreamServerError())
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            if self.quota_exhausted(response):
                self._note_quota_exhausted()
                raise UpstreamQuotaExhausted(retry_after=retry_after or QUOTA_RETRY_AFTER_SECONDS)
            self._record("rate_limited", healthy=None)
            raise _Retryable(
                UpstreamRateLimited(retry_after=retry_after or DEFAULT_RETRY_AFTER_SECONDS)
            )
        if status == 402:
            self._note_quota_exhausted()
            raise UpstreamQuotaExhausted(retry_after=QUOTA_RETRY_AFTER_SECONDS)
        if status >= 400:
            self._record("rejected", healthy=None)
            log.error("upstream_rejected_request", source=self.source, status=status)
            raise UpstreamRejected()
        try:
            parsed = parse(response.json())
        except (ValueError, ValidationError, RecursionError):
            self._record("malformed", healthy=False)
            log.warning("upstream_malformed_response", source=self.source, status=status)
            raise UpstreamMalformed() from None
        self._record("ok", healthy=True)
        return parsed

    def quota_exhausted(self, response: httpx.Response) -> bool:
        """Whether a 429 means the plan is used up rather than a short rate limit."""
        return False

    def _note_quota(self, headers: Mapping[str, str]) -> None:
        """Reads the plan's remaining count; a value that is not plain ASCII digits is
        ignored (str.isdigit accepts "\u00b2", which int() refuses)."""
        remaining = parse_count(headers.get("x-ratelimit-requests-remaining"))
        if remaining is not None:
            self.quota_remaining = remaining
            UPSTREAM_QUOTA_REMAINING.labels(self.source).set(remaining)

    def _note_quota_exhausted(self) -> None:
        # TheirStack reports no remaining count, only 402 once credits are gone.
        self.quota_remaining = 0
        UPSTREAM_QUOTA_REMAINING.labels(self.source).set(0)
        self._record("quota_exhausted", healthy=None)

    def _record(self, outcome: str, *, healthy: bool | None) -> None:
        UPSTREAM_CALLS.labels(self.source, outcome).inc()
        if healthy is True:
            self.breaker.record_success()
        elif healthy is False:
            self.breaker.record_failure()
        else:
            self.breaker.release_trial()
