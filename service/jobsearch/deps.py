"""FastAPI dependencies, as Annotated aliases for the routers."""

from __future__ import annotations

import hmac
import re
from collections.abc import Sequence
from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError

from jobsearch.errors import Unauthorized
from jobsearch.ratelimit import SearchRateLimiter
from jobsearch.search import SearchService
from jobsearch.settings import Settings


# async: FastAPI runs a plain `def` dependency in a worker thread, a hop per request.
async def _settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


async def _search_service(request: Request) -> SearchService:
    return cast(SearchService, request.state.search)


async def _rate_limiter(request: Request) -> SearchRateLimiter:
    return cast(SearchRateLimiter, request.state.rate_limiter)


END_USER_HEADER = "X-End-User"
MAX_END_USER_CHARS = 128
# Printable ASCII, not starting with a space: an IP address or a session ID.
_END_USER = re.compile(rf"[!-~][ -~]{{0,{MAX_END_USER_CHARS - 1}}}")


def end_user(value: str) -> str:
    """X-End-User's value, or a 422 naming the header."""
    if not _END_USER.fullmatch(value):
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": (END_USER_HEADER,),
                    "msg": f"must be 1 to {MAX_END_USER_CHARS} printable ASCII characters "
                    "(an IP address or a session ID)",
                    "input": None,
                }
            ]
        )
    return value


def frontend_key_valid(authorization: str | None, keys: Sequence[bytes]) -> bool:
    """Whether `Authorization: Bearer <token>` carries one of the keys.

    The token is compared with every key, each in constant time
    (hmac.compare_digest), so neither which key matched nor how much of one
    did shows in the time taken.
    """
    scheme, _, token = (authorization or "").partition(" ")
    presented = token.strip().encode() if scheme.lower() == "bearer" else b""
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(presented, key)
    return matched and bool(presented)


async def _search_service_within_rate_limit(request: Request) -> SearchService:
    """The search service, once this caller may search (its frontend key, when
    FRONTEND_API_KEYS is set) and is within its rate limit.

    One dependency rather than several: each costs FastAPI a resolution per request.
    It runs before the body is validated, so an unauthorized search is 401 whatever
    its body.
    """
    # request.client is the real client: uvicorn rewrites it from X-Forwarded-For
    # only when the peer is in FORWARDED_ALLOW_IPS.
    counted = request.client.host if request.client else "unknown"
    keys: tuple[bytes, ...] = request.app.state.frontend_keys
    if keys:
        if not frontend_key_valid(request.headers.get("authorization"), keys):
            raise Unauthorized()
        # A caller holding a frontend key names the end user it searches for (the
        # browser's address or a session): the limit counts that user, not the
        # frontend's server. Without a valid key the header is ignored.
        named = request.headers.get(END_USER_HEADER)
        if named is not None:
            counted = end_user(named)
    limiter = cast(SearchRateLimiter, request.state.rate_limiter)
    await limiter.check(counted)
    return cast(SearchService, request.state.search)


SettingsDep = Annotated[Settings, Depends(_settings)]
SearchServiceDep = Annotated[SearchService, Depends(_search_service)]
RateLimiterDep = Annotated[SearchRateLimiter, Depends(_rate_limiter)]
RateLimitedSearchDep = Annotated[SearchService, Depends(_search_service_within_rate_limit)]
