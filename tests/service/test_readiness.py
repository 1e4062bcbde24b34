"""/ready (readiness.py, routers/health.py): a cached state, refreshed at most every second,
and a documented response model."""

from __future__ import annotations

import asyncio
import time

import httpx

from infra.standins.app import StandinState
from jobsearch.readiness import REFRESH_SECONDS
from tests.conftest import ServiceRunner

REDIS_URL = "redis://127.0.0.1:6379/9"


async def _flood(url: str, count: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=10) as client:
        return list(await asyncio.gather(*(client.get(f"{url}/ready") for _ in range(count))))


def test_a_flood_of_ready_calls_is_answered_from_one_check(
    run_service: ServiceRunner, fakes: StandinState
) -> None:
    with run_service(redis_url=REDIS_URL) as url:
        started = time.monotonic()
        answers = asyncio.run(_flood(url, 200))
        elapsed = time.monotonic() - started
        time.sleep(REFRESH_SECONDS + 0.2)
        later = httpx.get(f"{url}/ready").json()
    assert {a.status_code for a in answers} == {200}
    bodies = [a.json() for a in answers]
    assert {b["status"] for b in bodies} == {"ready"}
    # One check of the database and Redis per second served them all (a call per check
    # would give 200 moments).
    checks = len({b["checked_at"] for b in bodies})
    assert checks <= elapsed / REFRESH_SECONDS + 1, (checks, elapsed)
    assert len({b["checks"]["database"]["latency_ms"] for b in bodies}) == checks
    assert later["checked_at"] > bodies[0]["checked_at"], "refreshed once a second has passed"


def test_the_ready_document_is_a_documented_model(service_url: str) -> None:
    schema = httpx.get(f"{service_url}/openapi.json").json()
    ready = schema["paths"]["/ready"]["get"]["responses"]
    assert ready["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ReadyResponse"
    }
    assert ready["503"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ReadyResponse"
    }
    checks = schema["components"]["schemas"]["ReadyChecks"]["properties"]
    assert set(checks) == {"database", "rate_limit_store", "sources", "quota", "budget", "auth"}
    body = httpx.get(f"{service_url}/ready").json()
    assert set(body) == {"status", "checked_at", "checks"}
    assert set(body["checks"]) == set(checks)
