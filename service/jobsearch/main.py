"""Builds the FastAPI app: routers, middleware, error handlers and lifespan state."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import sentry_sdk
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.telemetry import TelemetryConfig
from pydantic import SecretStr

from jobsearch import __version__
from jobsearch.budget import DailyBudgets
from jobsearch.cache import (
    EMPTY_RESULT_TTL_MINUTES,
    CacheUnavailable,
    MemoryCache,
    PostgresCache,
)
from jobsearch.coalescing import SharedClaims
from jobsearch.errors import add_error_handlers
from jobsearch.logging_setup import configure_logging, get_logger
from jobsearch.middleware import RequestContextMiddleware
from jobsearch.ratelimit import SearchRateLimiter, redis_client
from jobsearch.readiness import Readiness
from jobsearch.routers import health, jobs, metrics
from jobsearch.search import SearchService, SourceClient
from jobsearch.settings import Settings, get_settings
from jobsearch.upstreams.jsearch import JSearchClient
from jobsearch.upstreams.theirstack import TheirStackClient

log = get_logger(__name__)

PURGE_EVERY_SECONDS = 15 * 60
NO_OPENTELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "auto_configure": False,
}
CONNECT_TIMEOUT_CAP_SECONDS = 3.0
YOUNG_GENERATION_THRESHOLD = 10_000


def _upstream_client(
    kind: type[JSearchClient] | type[TheirStackClient],
    api_key: str | None,
    base_url: str,
    timeout_seconds: float,
) -> SourceClient | None:
    if api_key is None:
        return None
    http = httpx.AsyncClient(
        base_url=base_url.rstrip("/"),
        headers={**kind.auth_headers(api_key, base_url), "Accept": "application/json"},
        timeout=httpx.Timeout(
            timeout_seconds, connect=min(timeout_seconds, CONNECT_TIMEOUT_CAP_SECONDS)
        ),
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        follow_redirects=False,
    )
    return kind(http, timeout_seconds=timeout_seconds)


async def _purge_expired_rows(database: PostgresCache) -> None:
    while True:
        await asyncio.sleep(PURGE_EVERY_SECONDS)
        with contextlib.suppress(CacheUnavailable):
            await database.purge_expired()


def _reveal(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    settings: Settings = app.state.settings
    clients: dict[str, SourceClient | None] = {
        "jsearch": _upstream_client(
            JSearchClient,
            _reveal(settings.rapid_api_key),
            str(settings.jsearch_base_url),
            settings.upstream_timeout_seconds,
        ),
        "theirstack": _upstream_client(
            TheirStackClient,
            _reveal(settings.theirstack_api_key),
            str(settings.theirstack_base_url),
            settings.upstream_timeout_seconds,
        ),
    }
    database = None
    if settings.database_url is not None:
        database = PostgresCache(
            settings.database_url.get_secret_value(),
            ttl_minutes=settings.cache_ttl_minutes,
            workers=settings.workers,  # the pool is this worker's share of the budget
        )
        await database.open()
    redis_url = str(settings.redis_url) if settings.redis_url else None
    # One client for the worker's own Redis commands: coalescing and rate-limit checks.
    shared_redis = redis_client(redis_url) if redis_url else None
    claims = (
        SharedClaims(
            shared_redis,
            # A claim outlives the longest a search may wait on an upstream.
            claim_seconds=3 * settings.upstream_timeout_seconds + 2,
            # A follower waits no longer than its own search may take.
            wait_seconds=3 * settings.upstream_timeout_seconds,
        )
        if shared_redis
        else None
    )
    memory = MemoryCache(
        ttl_seconds=settings.cache_ttl_minutes * 60,
        empty_ttl_seconds=min(settings.cache_ttl_minutes, EMPTY_RESULT_TTL_MINUTES) * 60,
    )
    budgets = DailyBudgets(
        {
            "jsearch": settings.jsearch_daily_budget,
            "theirstack": settings.theirstack_daily_budget,
        },
        shared_redis,
        processes=settings.processes,
    )
    search = SearchService(clients, memory, database, claims, budgets)
    limiter = SearchRateLimiter(settings.rate_limit, shared_redis, processes=settings.processes)
    purger = asyncio.create_task(_purge_expired_rows(database)) if database else None
    _tune_garbage_collector()
    log.info(
        "started",
        app_env=settings.app_env,
        sources=search.configured_sources(),
        database=database is not None,
        shared_rate_limit=limiter.shared,
    )
    try:
        yield {
            "search": search,
            "rate_limiter": limiter,
            "readiness": Readiness(search, limiter),
        }
    finally:
        if purger is not None:
            purger.cancel()
        await search.aclose()
        await limiter.aclose()
        if shared_redis is not None:
            await shared_redis.aclose()
        if database is not None:
            await database.close()
        log.info("stopped")


def _tune_garbage_collector() -> None:
    """Cyclic garbage collection sized for a server, once the worker has started.

    What startup built (modules, the app, its clients: about 100,000 objects)
    lives as long as the worker, yet each full collection walked it all: about
    60 ms in which no request moved, the service's p99 under load. Frozen, it is
    never walked again; startup garbage is collected first, as frozen objects
    never are. A request allocates a few hundred objects, so the default young
    generation (700) was collected every couple of requests; at 10,000 the
    collector's share of a cache hit falls from about 20 µs to a few.
    """
    gc.collect()
    gc.freeze()
    _, middle_threshold, old_threshold = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle_threshold, old_threshold)


def _init_sentry(settings: Settings) -> None:
    if settings.sentry_dsn is None:
        return
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.app_env,
        release=__version__,
        # No PII: left to the SDK's default (send_default_pii is deprecated and
        # off; data_collection, once given, opts into collecting most things).
        # No frame locals: a client's headers, holding its API key, would be one.
        include_local_variables=False,
        traces_sample_rate=0.0,
        max_request_body_size="never",
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.secret_values)
    _init_sentry(settings)
    app = FastAPI(
        title="Job search API",
        version=__version__,
        lifespan=lifespan,
        # Metrics are Prometheus (/metrics) and errors go to Sentry. FastAPI's own
        # OpenTelemetry hooks would record each request (its path, its client) for
        # whatever provider the process or its OTEL_* variables set up: data leaving
        # by a route nobody reviewed.
        telemetry=NO_OPENTELEMETRY,
        # The interactive docs load scripts from a CDN, which the CSP forbids.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    # Encoded once: each search compares the presented key with every one of them.
    app.state.frontend_keys = tuple(key.encode() for key in settings.frontend_keys)
    app.include_router(health.router)
    app.include_router(jobs.router)
    app.include_router(metrics.router)
    add_error_handlers(app)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST"],
        allow_headers=["Content-Type", "X-Request-ID"],
        expose_headers=["X-Request-ID", "Retry-After", "X-Cache"],
        max_age=600,
    )
    app.add_middleware(
        RequestContextMiddleware,
        body_timeout_seconds=settings.request_body_timeout_seconds,
        max_concurrent=settings.max_concurrent_requests,
    )
    return app
