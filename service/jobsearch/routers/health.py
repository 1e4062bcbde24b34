"""Liveness (/health) and readiness (/ready)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from jobsearch.breaker import CircuitState
from jobsearch.deps import RateLimiterDep, SearchServiceDep
from jobsearch.readiness import Readiness
from jobsearch.search import SearchService
from jobsearch.server import draining

router = APIRouter(tags=["health"])

# Below this many requests left on a plan, /ready reports the quota as low
# (the JobSearchUpstreamQuotaLow alert watches for it).
QUOTA_LOW_BELOW = 50


class HealthResponse(BaseModel):
    status: Literal["healthy", "draining"]


@router.get(
    "/health",
    response_model=HealthResponse,
    responses={
        503: {
            "model": HealthResponse,
            "description": "Draining: this process is stopping; send new requests elsewhere.",
        }
    },
)
async def health() -> dict[str, str] | JSONResponse:
    """Liveness: the process answers. Checks no dependency, by design.

    503 "draining" once the process has received SIGTERM: it still serves requests
    for a few seconds (jobsearch.server.DRAIN_SECONDS), while the proxy, whose
    health check reads this, stops sending it new ones.
    """
    if draining():
        return JSONResponse(status_code=503, content={"status": "draining"})
    return {"status": "healthy"}


class DatabaseCheck(BaseModel):
    status: Literal["up", "down", "not_configured"]
    latency_ms: float | None = Field(description="Round trip of the last check; null unless up.")


class RateLimitStoreCheck(BaseModel):
    status: Literal["up", "down", "memory"] = Field(
        description="up: Redis, shared by every process; down: Redis failed; memory: no Redis."
    )
    fallback: Literal["memory"] | None = Field(
        description="While Redis is down: where the limit is counted instead."
    )
    limit_per_process: str | None = Field(
        description="While counted per process: this process's share of RATE_LIMIT."
    )


class ConfiguredSource(BaseModel):
    configured: Literal[True]
    circuit: CircuitState
    quota_remaining: int | None = Field(
        description="Last figure the upstream reported to this worker; null until it has."
    )
    # A default: a /ready from a service older than the field still parses (ops diagnose).
    data: Literal["sample", "live"] = Field(
        default="live",
        description="sample: a local stand-in's sample listings (SAMPLE_SOURCES); live: the API.",
    )


class UnconfiguredSource(BaseModel):
    configured: Literal[False]


class QuotaCheck(BaseModel):
    status: Literal["ok", "low"]
    low_below: int


class SourceBudget(BaseModel):
    status: Literal["unlimited", "ok", "exhausted"]
    limit: int | None = Field(description="Upstream calls allowed per UTC day; null: unlimited.")
    remaining: int | None
    resets_in_seconds: int = Field(description="Until the next UTC day, when a new budget begins.")
    counted_in: Literal["redis", "memory"]


class BudgetCheck(BaseModel):
    status: Literal["ok", "exhausted"] = Field(
        description="exhausted once a configured source's budget for the day is spent."
    )
    sources: dict[str, SourceBudget]


class AuthCheck(BaseModel):
    status: Literal["open", "required"] = Field(
        description="required: searches need a frontend key (FRONTEND_API_KEYS); open: not."
    )


class ReadyChecks(BaseModel):
    database: DatabaseCheck
    rate_limit_store: RateLimitStoreCheck
    sources: dict[str, ConfiguredSource | UnconfiguredSource]
    quota: QuotaCheck
    budget: BudgetCheck
    auth: AuthCheck


class ReadyResponse(BaseModel):
    status: Literal["ready", "degraded", "unavailable"]
    checked_at: datetime = Field(
        description="When the database and Redis were last checked (at most a second or so ago)."
    )
    checks: ReadyChecks


@router.get(
    "/ready",
    response_model=ReadyResponse,
    responses={
        503: {"model": ReadyResponse, "description": "Unavailable: no source is configured."}
    },
)
async def ready(
    request: Request, search: SearchServiceDep, limiter: RateLimiterDep
) -> JSONResponse:
    """Readiness, with the state of each dependency.

    200 "ready": everything is up. 200 "degraded": searches work, but the
    cache database or the shared rate-limit store is down, a source is paused
    by its circuit breaker, or a source's daily budget is spent. 503
    "unavailable": no search can succeed, because no source is configured.
    `checks.quota` is "low" once a source reports fewer than QUOTA_LOW_BELOW
    requests left; searches still work.

    The database and Redis are checked at most once per second per worker
    (jobsearch.readiness): a flood of calls costs them one round trip.
    """
    readiness: Readiness = request.state.readiness
    state = await readiness.state()
    store = RateLimitStoreCheck(
        status=state.rate_limit_store,
        fallback="memory" if state.rate_limit_store == "down" else None,
        limit_per_process=limiter.fallback_limit if state.rate_limit_store != "up" else None,
    )
    sources: dict[str, ConfiguredSource | UnconfiguredSource] = {}
    samples = request.app.state.settings.sample_sources
    for name, client in search.clients.items():
        if client is None:
            sources[name] = UnconfiguredSource(configured=False)
        else:
            sources[name] = ConfiguredSource(
                configured=True,
                circuit=client.breaker.state,
                quota_remaining=client.quota_remaining,
                data="sample" if name in samples else "live",
            )
    configured = {n: s for n, s in sources.items() if isinstance(s, ConfiguredSource)}
    reported = [s.quota_remaining for s in configured.values() if s.quota_remaining is not None]
    quota = QuotaCheck(
        status="low" if any(left < QUOTA_LOW_BELOW for left in reported) else "ok",
        low_below=QUOTA_LOW_BELOW,
    )
    budget = _budget_check(search, list(configured))
    status: Literal["ready", "degraded", "unavailable"]
    if not configured:
        status, code = "unavailable", 503
    elif (
        state.database == "down"
        or state.rate_limit_store == "down"
        or any(s.circuit != "closed" for s in configured.values())
        or budget.status == "exhausted"
    ):
        status, code = "degraded", 200
    else:
        status, code = "ready", 200
    document = ReadyResponse(
        status=status,
        checked_at=state.checked_at,
        checks=ReadyChecks(
            database=DatabaseCheck(status=state.database, latency_ms=state.database_latency_ms),
            rate_limit_store=store,
            sources=sources,
            quota=quota,
            budget=budget,
            auth=AuthCheck(status="required" if request.app.state.frontend_keys else "open"),
        ),
    )
    return JSONResponse(status_code=code, content=document.model_dump(mode="json"))


def _budget_check(search: SearchService, configured: list[str]) -> BudgetCheck:
    """Each source's daily budget; "exhausted" once a configured source's is spent."""
    budgets = {}
    for name in search.clients:
        state = search.budgets.state(name)
        budgets[name] = SourceBudget(
            status=state.status,
            limit=state.limit,
            remaining=state.remaining,
            resets_in_seconds=state.resets_in_seconds,
            counted_in=state.counted_in,
        )
    spent = any(budgets[name].status == "exhausted" for name in configured)
    return BudgetCheck(status="exhausted" if spent else "ok", sources=budgets)
