"""Liveness (/health) and readiness (/ready)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from jobsearch.cache import CacheUnavailable
from jobsearch.deps import RateLimiterDep, SearchServiceDep
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


@router.get("/ready")
async def ready(
    request: Request, search: SearchServiceDep, limiter: RateLimiterDep
) -> JSONResponse:
    """Readiness, with the state of each dependency.

    200 "ready": everything is up. 200 "degraded": searches work, but the
    cache database or the shared rate-limit store is down, or a source is
    paused by its circuit breaker. 503 "unavailable": no search can succeed,
    because no source is configured. `checks.quota` is "low" once a source
    reports fewer than QUOTA_LOW_BELOW requests left; searches still work.
    """
    database: dict[str, Any]
    if search.database is None:
        database = {"status": "not_configured"}
    else:
        try:
            database = {"status": "up", "latency_ms": await search.database.ping()}
        except CacheUnavailable:
            database = {"status": "down"}

    rate_limit_store = "memory"
    if limiter.shared:
        rate_limit_store = "up" if await limiter.healthy() else "down"
    store: dict[str, Any] = {"status": rate_limit_store}
    if rate_limit_store != "up":
        # Counted in this process: its share of the limit is what holds.
        if rate_limit_store == "down":
            store["fallback"] = "memory"
        store["limit_per_process"] = limiter.fallback_limit

    sources: dict[str, Any] = {}
    for name, client in search.clients.items():
        if client is None:
            sources[name] = {"configured": False}
        else:
            sources[name] = {
                "configured": True,
                "circuit": str(client.breaker.state),
                # Last figure the upstream reported to this worker; null until it has.
                "quota_remaining": client.quota_remaining,
            }

    budget = await _budget_check(
        search, [name for name, info in sources.items() if info["configured"]]
    )
    budget_spent = budget["status"] == "exhausted"

    configured = [info for info in sources.values() if info["configured"]]
    reported = [
        info["quota_remaining"] for info in configured if info["quota_remaining"] is not None
    ]
    quota = {
        "status": "low" if any(left < QUOTA_LOW_BELOW for left in reported) else "ok",
        "low_below": QUOTA_LOW_BELOW,
    }
    if not configured:
        status, code = "unavailable", 503
    elif (
        database["status"] == "down"
        or rate_limit_store == "down"
        or any(info["circuit"] != "closed" for info in configured)
        or budget_spent
    ):
        status, code = "degraded", 200
    else:
        status, code = "ready", 200
    return JSONResponse(
        status_code=code,
        content={
            "status": status,
            "checks": {
                "database": database,
                "rate_limit_store": store,
                "sources": sources,
                "quota": quota,
                # "exhausted" once a configured source's daily budget of paid calls is spent.
                "budget": budget,
                # "required": searches need a frontend key (FRONTEND_API_KEYS); "open": not.
                "auth": {"status": "required" if request.app.state.frontend_keys else "open"},
            },
        },
    )


async def _budget_check(search: SearchService, configured: list[str]) -> dict[str, Any]:
    """Each source's daily budget; "exhausted" once a configured source's is spent."""
    await search.budgets.refresh()
    budgets: dict[str, Any] = {}
    for name in search.clients:
        state = search.budgets.state(name)
        budgets[name] = (
            {"status": state.status}
            if state.limit is None
            else {
                "status": state.status,
                "limit": state.limit,
                "remaining": state.remaining,
                "resets_in_seconds": state.resets_in_seconds,
                "counted_in": state.counted_in,
            }
        )
    spent = any(budgets[name]["status"] == "exhausted" for name in configured)
    return {"status": "exhausted" if spent else "ok", "sources": budgets}
