"""Structured JSON logs on stdout, one object per line, with secrets scrubbed.

Our own events go through structlog's native, cached pipeline: an access line
is written on every request, and the stdlib route costs several times more.
Library records (uvicorn, httpx, psycopg) come through stdlib logging and the
same processors. Either way the last step renders the line and scrubs it, so
redaction covers every field, exception text included.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

REDACTED = "[REDACTED]"
# user:password@ in any URL-like string (DSNs, Redis URLs), and Sentry DSNs,
# which carry their key as the URL's user part.
_URL_CREDENTIALS = re.compile(
    r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^/\s:@\"]*:)[^@\s/\"]+@"
    r"|(?P<sentry>https?://)[0-9a-f]{16,}@"
)
_SECRET_KEY_NAMES = frozenset({"x-rapidapi-key", "authorization", "cookie"})


def _credentials_replacement(match: re.Match[str]) -> str:
    return f"{match['head'] or match['sentry']}{REDACTED}@"


class Redactor:
    """Scrubs known secret values and URL credentials from a rendered line."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if len(secret) >= 4:
                # As written, and as it appears inside a JSON string.
                forms.update({secret, json.dumps(secret)[1:-1]})
        # Longest first, so that a secret containing another is removed whole.
        ordered = sorted(forms, key=len, reverse=True)
        self._secrets = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            if self._secrets is not None:
                value = self._secrets.sub(REDACTED, value)
            if "://" in value:
                value = _URL_CREDENTIALS.sub(_credentials_replacement, value)
            return value
        if isinstance(value, Mapping):
            return {
                key: REDACTED if str(key).lower() in _SECRET_KEY_NAMES else self.scrub(item)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.scrub(item) for item in value]
        return value


class _RedactingRenderer:
    """JSON-renders an event, then scrubs the line: one pass over one string."""

    def __init__(self) -> None:
        self.redactor = Redactor(())

    def __call__(self, logger: WrappedLogger, method: str, event: EventDict) -> str:
        for key, value in event.items():
            if isinstance(value, Mapping):  # structured values: drop secret-named keys too
                event[key] = self.redactor.scrub(value)
        line = json.dumps(event, default=str, ensure_ascii=False)
        return str(self.redactor.scrub(line))


# One renderer for both pipelines; configure_logging swaps its secrets.
_renderer = _RedactingRenderer()


def _add_pid(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
    event["pid"] = os.getpid()
    return event


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_pid,
    ]


def configure_logging(level: str, secrets: Iterable[str]) -> None:
    _renderer.redactor = Redactor(secrets)
    numeric_level = logging.getLevelName(level)
    structlog.configure(
        processors=[
            *_shared_processors(),
            _name_logger,
            structlog.processors.format_exc_info,
            _renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared_processors(), structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _renderer,
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


def get_logger(name: str) -> Any:
    """A structlog logger whose lines say which module wrote them.

    Lazy: module-level loggers are made before configure_logging runs. The
    name travels as `logger_name` (get_logger reserves `logger`) and is
    renamed to `logger`, the key library records carry too.
    """
    return structlog.get_logger(logger_name=name)


def _name_logger(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
    if "logger_name" in event:
        event["logger"] = event.pop("logger_name")
    return event
