"""Facts about the request in flight, gathered for its access log line."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class RequestFacts:
    request_id: str = "-"
    source: str | None = None
    cache: str | None = None  # hit, miss, coalesced or bypass
    upstream_attempts: int = 0


_current: ContextVar[RequestFacts | None] = ContextVar("request_facts", default=None)


def current_facts() -> RequestFacts:
    """The facts of the request in flight; a throwaway object outside a request."""
    facts = _current.get()
    return facts if facts is not None else RequestFacts()


def begin_request(request_id: str) -> RequestFacts:
    facts = RequestFacts(request_id=request_id)
    _current.set(facts)
    return facts
