"""The outermost layer of the app: request IDs, access log, metrics, headers, body limits,
and how many requests a worker takes on at once.

One ASGI middleware rather than several, because the access line needs facts
from all of them (the request ID, the status, the latency, and what the
search did) and they share one per-request context.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from functools import lru_cache

import sentry_sdk
import structlog
from prometheus_client import Counter, Histogram
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobsearch.context import RequestFacts, begin_request
from jobsearch.logging_setup import get_logger
from jobsearch.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = get_logger("jobsearch.access")

MAX_BODY_BYTES = 16 * 1024
# Whether the declared length or the bytes as they arrive are too many, one answer.
BODY_TOO_LARGE_MESSAGE = f"The request body is larger than {MAX_BODY_BYTES} bytes."
BODY_TIMEOUT_MESSAGE = "The request body did not arrive in time."
OVERLOADED_MESSAGE = "This server is handling as many requests as it can; retry in a second."
# Never refused for load: the proxy's health check (a refused one would take the
# replica out of rotation, or have it killed) and the metrics scrape.
UNLIMITED_PATHS = frozenset({"/health", "/metrics"})
_CLOSE = (b"connection", b"close")
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
# Uvicorn accepts paths of about 64 KB: logged whole, a few hundred unthrottled 404s
# would rotate a replica's log history away. No route of ours is longer than this.
MAX_LOGGED_PATH_CHARS = 256

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # A JSON API loads nothing and may not be framed.
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
    "Cross-Origin-Resource-Policy": "same-site",
    "Cache-Control": "no-store",
}


_RAW_SECURITY_HEADERS = tuple(
    (name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()
)


class _BodyTooLarge(HTTPException):
    """Raised while FastAPI reads the body, so it must be an HTTPException:
    FastAPI turns any other error there into a 400."""

    def __init__(self) -> None:
        super().__init__(status_code=413)


class _BodyTimeout(HTTPException):
    """The body did not arrive by its deadline (an HTTPException, as _BodyTooLarge)."""

    def __init__(self) -> None:
        super().__init__(status_code=408, headers={"Connection": "close"})


def error_body(code: str, message: str, request_id: str) -> bytes:
    return json.dumps(
        {"error": {"code": code, "message": message, "request_id": request_id}}
    ).encode()


class RequestContextMiddleware:
    """`body_timeout_seconds`: how long a request's body may take to arrive, from its
    headers on; a client that trickles it is answered 408 and its connection closed.
    `max_concurrent`: requests this worker serves at once; beyond it a request is
    refused at once with 503 `overloaded` (Retry-After: 1), rather than queued
    without bound. /health and /metrics are never refused."""

    def __init__(
        self, app: ASGIApp, *, body_timeout_seconds: float = 5.0, max_concurrent: int = 100
    ) -> None:
        self.app = app
        self.body_timeout_seconds = body_timeout_seconds
        self.max_concurrent = max_concurrent
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        offered = headers.get("x-request-id", "")
        request_id = offered if _VALID_REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
        facts = begin_request(request_id)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        exchange = _Exchange(send, request_id)
        started = time.perf_counter()
        counted = scope["path"] not in UNLIMITED_PATHS
        if counted and self.in_flight >= self.max_concurrent:
            await exchange.fail(
                503, "overloaded", OVERLOADED_MESSAGE, headers=((b"retry-after", b"1"), _CLOSE)
            )
            _record(scope, exchange.status, time.perf_counter() - started, facts)
            return
        if counted:
            self.in_flight += 1
        try:
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
                raise _BodyTooLarge()
            deadline = asyncio.get_running_loop().time() + self.body_timeout_seconds
            await self.app(scope, self._bounded(receive, deadline), exchange.send)
        except _BodyTooLarge:
            await exchange.fail(413, "body_too_large", BODY_TOO_LARGE_MESSAGE)
        except _BodyTimeout:
            await exchange.fail(408, "request_timeout", BODY_TIMEOUT_MESSAGE, headers=(_CLOSE,))
        except Exception:
            # Nothing of the exception reaches the client; the log and Sentry get it all.
            log.exception("unhandled_error")
            sentry_sdk.capture_exception()
            await exchange.fail(500, "internal_error", "The server failed to handle the request.")
        finally:
            if counted:
                self.in_flight -= 1
            _record(scope, exchange.status, time.perf_counter() - started, facts)

    def _bounded(self, receive: Receive, deadline: float) -> Receive:
        """`receive`, refusing a body over MAX_BODY_BYTES or one still arriving at `deadline`."""
        received = 0
        complete = False

        async def receive_bounded() -> Message:
            nonlocal received, complete
            if complete:
                # After the body, receive only waits for the client to leave: unbounded.
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise _BodyTimeout() from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    raise _BodyTooLarge()
                complete = not message.get("more_body", False)
            else:
                complete = True
            return message

        return receive_bounded


class _Exchange:
    """The response side of one request: adds our headers and remembers the status."""

    def __init__(self, send: Send, request_id: str) -> None:
        self._send = send
        self.request_id = request_id
        self.status = 500
        self.started = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.started = True
            # Appended as raw pairs: this runs on every response, and no route sets them.
            message["headers"] = [
                *message.get("headers", ()),
                (b"x-request-id", self.request_id.encode()),
                *_RAW_SECURITY_HEADERS,
            ]
        await self._send(message)

    async def fail(
        self, status: int, code: str, message: str, headers: tuple[tuple[bytes, bytes], ...] = ()
    ) -> None:
        if self.started:
            return  # too late for an error body; the client sees a cut response
        body = error_body(code, message, self.request_id)
        await self.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *headers,
                ],
            }
        )
        await self.send({"type": "http.response.body", "body": body})


# Clients choose the method; an unbounded label would let them grow the metrics.
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@lru_cache(maxsize=512)
def _request_metrics(method: str, route: str, status: int) -> tuple[Counter, Histogram]:
    # labels() hashes and locks on every call; the children never change.
    return (
        HTTP_REQUESTS.labels(method, route, str(status)),
        HTTP_LATENCY.labels(method, route),
    )


def _record(scope: Scope, status: int, elapsed: float, facts: RequestFacts) -> None:
    route = scope.get("route")
    route_label = getattr(route, "path", None) or "unmatched"
    method = scope["method"] if scope["method"] in _KNOWN_METHODS else "OTHER"
    requests, latency = _request_metrics(method, route_label, status)
    requests.inc()
    latency.observe(elapsed)
    client = scope.get("client")
    log.info(
        "request",
        method=scope["method"],
        path=_loggable_path(scope["path"]),
        status=status,
        latency_ms=round(elapsed * 1000, 1),
        client_ip=client[0] if client else None,
        source=facts.source,
        cache=facts.cache,
        upstream_attempts=facts.upstream_attempts,
    )


def _loggable_path(path: str) -> str:
    """The path, cut to MAX_LOGGED_PATH_CHARS with a mark where it was cut."""
    if len(path) <= MAX_LOGGED_PATH_CHARS:
        return path
    return path[:MAX_LOGGED_PATH_CHARS] + "\u2026"
