"""Every error the API answers with: a status, a stable code and a safe message.

Handlers in `main.py` turn these into `{"error": {"code", "message", "request_id"}}`.
Messages are written here, never taken from an exception, so that no internal
detail (hosts, SQL, keys) can reach a client.
"""

from __future__ import annotations

from typing import ClassVar


class ApiError(Exception):
    status_code: int = 500
    code: str = "internal_error"
    message: str = "The server failed to handle the request."
    # Response headers this error always carries (Retry-After comes from retry_after).
    headers: ClassVar[dict[str, str]] = {}

    def __init__(self, message: str | None = None, *, retry_after: int | None = None) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message
        self.retry_after = retry_after


class SourceNotConfigured(ApiError):
    status_code = 503
    code = "source_not_configured"
    message = "This job source is not configured on the server."


class Unauthorized(ApiError):
    status_code = 401
    code = "unauthorized"
    message = "A valid API key is required: send Authorization: Bearer <key>."
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": 'Bearer realm="jobsearch"'}


class RateLimited(ApiError):
    status_code = 429
    code = "rate_limited"
    message = "Too many searches from this address; retry after the given seconds."


class BudgetExhausted(ApiError):
    """Today's budget of paid calls to this source is spent (JSEARCH_DAILY_BUDGET,
    THEIRSTACK_DAILY_BUDGET); cached searches are still answered."""

    status_code = 503
    code = "budget_exhausted"
    message = (
        "Today's budget of searches sent to this job source is spent; cached searches "
        "still work. Retry after the given seconds (the next UTC day)."
    )


class UpstreamError(ApiError):
    """A failure of the paid API behind a source."""

    # Failures that say the upstream is unhealthy, which the circuit breaker counts.
    counts_against_upstream = True


class UpstreamTimeout(UpstreamError):
    status_code = 504
    code = "upstream_timeout"
    message = "The job source did not answer in time."


class UpstreamUnreachable(UpstreamError):
    status_code = 502
    code = "upstream_unreachable"
    message = "The job source could not be reached."


class UpstreamServerError(UpstreamError):
    status_code = 502
    code = "upstream_error"
    message = "The job source failed to answer the search."


class UpstreamMalformed(UpstreamError):
    status_code = 502
    code = "upstream_malformed_response"
    message = "The job source answered with data that could not be read."


class UpstreamRejected(UpstreamError):
    """The upstream refused our credentials or request: our fault, not theirs."""

    counts_against_upstream = False
    status_code = 502
    code = "upstream_rejected"
    message = "The job source rejected the request made on your behalf."


class UpstreamRateLimited(UpstreamError):
    counts_against_upstream = False
    status_code = 503
    code = "upstream_rate_limited"
    message = "The job source is rate limiting this service; retry later."


class UpstreamQuotaExhausted(UpstreamError):
    counts_against_upstream = False
    status_code = 503
    code = "upstream_quota_exhausted"
    message = "The paid quota of this job source is used up; retry later."


class UpstreamCircuitOpen(UpstreamError):
    counts_against_upstream = False
    status_code = 503
    code = "upstream_unavailable"
    message = "The job source is failing; searches are paused briefly to let it recover."


def upstream_error_for(code: str, *, retry_after: int | None = None) -> UpstreamError | None:
    """The upstream error whose code this is (as another process published it), or None."""
    pending: list[type[UpstreamError]] = [UpstreamError]
    while pending:
        kind = pending.pop()
        if kind is not UpstreamError and kind.code == code:
            return kind(retry_after=retry_after)
        pending += kind.__subclasses__()
    return None
