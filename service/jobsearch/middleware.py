"""The outermost layer of the app: request IDs, access log, metrics, headers, body limit.

One ASGI middleware rather than several, because the access line needs facts
from all of them (the request ID, the status, the latency, and what the
search did) and they share one per-request context.
"""

from __future__ import annotations

import json
import re
import time
import uuid

import sentry_sdk
import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobsearch.context import begin_request
from jobsearch.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = structlog.get_logger("jobsearch.access")

MAX_BODY_BYTES = 16 * 1024
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # A JSON API loads nothing and may not be framed.
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
    "Cross-Origin-Resource-Policy": "same-site",
    "Cache-Control": "no-store",
}


class _BodyTooLarge(Exception):
    pass


def error_body(code: str, message: str, request_id: str) -> bytes:
    return json.dumps(
        {"error": {"code": code, "message": message, "request_id": request_id}}
    ).encode()


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

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
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                out = MutableHeaders(scope=message)
                out["X-Request-ID"] = request_id
                for name, value in SECURITY_HEADERS.items():
                    out.setdefault(name, value)
            await send(message)

        received = 0

        async def receive_bounded() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _BodyTooLarge()
            return message

        try:
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_body_bytes:
                raise _BodyTooLarge()
            await self.app(scope, receive_bounded, send_with_headers)
        except _BodyTooLarge:
            if not response_started:
                await self._send_error(
                    send_with_headers,
                    413,
                    "body_too_large",
                    f"The request body is larger than {self.max_body_bytes} bytes.",
                    request_id,
                )
        except Exception:
            # Nothing of the exception reaches the client; the log and Sentry get it all.
            log.exception("unhandled_error")
            sentry_sdk.capture_exception()
            if not response_started:
                await self._send_error(
                    send_with_headers,
                    500,
                    "internal_error",
                    "The server failed to handle the request.",
                    request_id,
                )
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            route_label = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            HTTP_REQUESTS.labels(method, route_label, str(status)).inc()
            HTTP_LATENCY.labels(method, route_label).observe(elapsed)
            client = scope.get("client")
            log.info(
                "request",
                method=method,
                path=scope["path"],
                status=status,
                latency_ms=round(elapsed * 1000, 1),
                client_ip=client[0] if client else None,
                source=facts.source,
                cache=facts.cache,
                upstream_attempts=facts.upstream_attempts,
            )

    @staticmethod
    async def _send_error(
        send: Send, status: int, code: str, message: str, request_id: str
    ) -> None:
        body = error_body(code, message, request_id)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
