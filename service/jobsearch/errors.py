"""Every error the API answers with: a status, a stable code and a safe message.

The exception classes, the error body's schema (ErrorResponse) and the
handlers that turn an exception into `{"error": {"code", "message",
"request_id"}}` (add_error_handlers) live together here. Messages are written
here, never taken from an exception, so that no internal detail (hosts, SQL,
keys) can reach a client.
"""

from __future__ import annotations

from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from jobsearch.context import current_facts
from jobsearch.logging_setup import get_logger
from jobsearch.middleware import BODY_TIMEOUT_MESSAGE, BODY_TOO_LARGE_MESSAGE

log = get_logger(__name__)

BAD_JSON_MESSAGE = "The request body is not valid JSON."
# Starlette's own HTTP errors (routing, a body that is not JSON, the body limits):
# the code and message each is answered with.
HTTP_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", BAD_JSON_MESSAGE),
    404: ("not_found", "No such endpoint."),
    405: ("method_not_allowed", "Method not allowed on this endpoint."),
    408: ("request_timeout", BODY_TIMEOUT_MESSAGE),
    413: ("body_too_large", BODY_TOO_LARGE_MESSAGE),
}


class ErrorDetail(BaseModel):
    code: str
    message: str
    request_id: str
    fields: list[dict[str, str]] | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


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


def error_response(
    status: int, code: str, message: str, *, retry_after: int | None = None, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {
        "code": code,
        "message": message,
        "request_id": current_facts().request_id,
        **extra,
    }
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse(status_code=status, content={"error": body}, headers=headers)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, ApiError):  # registered for ApiError only
        raise exc
    log.info("request_failed", code=exc.code, status=exc.status_code)
    response = error_response(exc.status_code, exc.code, exc.message, retry_after=exc.retry_after)
    response.headers.update(exc.headers)
    return response


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):  # registered for RequestValidationError only
        raise exc
    fields = []
    for error in exc.errors():
        location = [str(part) for part in error["loc"] if part != "body"]
        fields.append(
            {
                "field": ".".join(location) or "body",
                "message": str(error["msg"]).removeprefix("Value error, "),
            }
        )
    summary = "; ".join(f"{item['field']}: {item['message']}" for item in fields)
    return error_response(422, "validation_error", summary, fields=fields)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, StarletteHTTPException):  # registered for StarletteHTTPException only
        raise exc
    code, message = HTTP_ERRORS.get(
        exc.status_code, ("http_error", "The request could not be handled.")
    )
    response = error_response(exc.status_code, code, message)
    if exc.status_code == 408:
        # The rest of the body may still come: this connection cannot carry another request.
        response.headers["Connection"] = "close"
    return response


def add_error_handlers(app: FastAPI) -> None:
    """Every error, ours or the framework's, answered with an ErrorResponse body."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
