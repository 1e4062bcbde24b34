"""FastAPI dependencies, as Annotated aliases for the routers."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

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


async def _search_service_within_rate_limit(request: Request) -> SearchService:
    """The search service, once this client is known to be within its rate limit.

    One dependency rather than two: each costs FastAPI a resolution per request.
    """
    # request.client is the real client: uvicorn rewrites it from X-Forwarded-For
    # only when the peer is in FORWARDED_ALLOW_IPS.
    client_ip = request.client.host if request.client else "unknown"
    limiter = cast(SearchRateLimiter, request.state.rate_limiter)
    await limiter.check(client_ip)
    return cast(SearchService, request.state.search)


SettingsDep = Annotated[Settings, Depends(_settings)]
SearchServiceDep = Annotated[SearchService, Depends(_search_service)]
RateLimiterDep = Annotated[SearchRateLimiter, Depends(_rate_limiter)]
RateLimitedSearchDep = Annotated[SearchService, Depends(_search_service_within_rate_limit)]
