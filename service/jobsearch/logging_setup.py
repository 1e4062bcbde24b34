"""Structured JSON logs on stdout, one object per line, with secrets scrubbed.

Every record, ours or a library's (uvicorn, httpx, psycopg), passes through
the same processors, so the redaction below applies to all of them.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

import structlog
from structlog.types import EventDict, WrappedLogger

REDACTED = "[REDACTED]"
# user:password@ in any URL-like string (DSNs, Redis URLs, Sentry DSNs).
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://[^/\s:@]*:)[^@\s/]+@")
# Sentry DSNs carry their key as the URL's user part.
_URL_USER_KEY = re.compile(r"(?P<scheme>https?://)[0-9a-f]{16,}@")
_SECRET_HEADER_NAMES = ("x-rapidapi-key", "authorization", "cookie")


class Redactor:
    """Replaces every known secret value, and any URL password, with [REDACTED]."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so that a secret containing another is removed whole.
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self.secrets:
                if secret in value:
                    value = value.replace(secret, REDACTED)
            value = _URL_PASSWORD.sub(rf"\g<scheme>{REDACTED}@", value)
            return _URL_USER_KEY.sub(rf"\g<scheme>{REDACTED}@", value)
        if isinstance(value, Mapping):
            return {
                key: REDACTED if str(key).lower() in _SECRET_HEADER_NAMES else self.scrub(item)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.scrub(item) for item in value]
        return value

    def __call__(self, logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
        scrubbed: MutableMapping[str, Any] = self.scrub(event)
        return dict(scrubbed)


def _add_pid(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
    event["pid"] = os.getpid()
    return event


def configure_logging(level: str, secrets: Iterable[str]) -> None:
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_pid,
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            Redactor(secrets),
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # Our middleware writes the access line; uvicorn's would be a second, poorer one.
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs each request at INFO; our access line already carries the upstream attempts.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("httpcore").setLevel(max(logging.WARNING, root.level))
