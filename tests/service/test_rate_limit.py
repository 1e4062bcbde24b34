"""The per-IP rate limit holds across uvicorn workers when Redis is configured."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import redis

from tests.conftest import ServiceRunner
from tests.fakes.upstreams import JSEARCH_KEY, THEIRSTACK_KEY, FakeUpstreams
from tests.support.processes import BURSTS_TO_REACH_BOTH_WORKERS, run_service_process

REDIS_DB = 7  # this test's own database on the machine's Redis
LIMIT = 10
REQUESTS = 40


async def _burst(url: str, size: int) -> list[httpx.Response]:
    async def one(index: int) -> httpx.Response:
        # A client per request: a new connection each, so the kernel spreads them over workers.
        async with httpx.AsyncClient(timeout=30) as client:
            return await client.post(url, json={"jobTitle": f"limit {index % 3}"})

    return list(await asyncio.gather(*(one(i) for i in range(size))))


def _workers_that_answered(log_path: Path) -> set[int]:
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    return {
        line["pid"]
        for line in lines
        if line.get("event") == "request" and line["path"] == "/api/jobs/jsearch"
    }


def test_limit_holds_across_two_workers(
    tmp_path: Path, fakes: FakeUpstreams, fakes_url: str, app_database_url: str
) -> None:
    redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB).flushdb()
    log_path = tmp_path / "service.log"
    env = {
        "WORKERS": "2",
        "REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
        "RATE_LIMIT": f"{LIMIT}/minute",
        "RAPID_API_KEY": JSEARCH_KEY,
        "THEIRSTACK_API_KEY": THEIRSTACK_KEY,
        "JSEARCH_BASE_URL": fakes_url,
        "THEIRSTACK_BASE_URL": fakes_url,
        "DATABASE_URL": app_database_url,
    }
    responses: list[httpx.Response] = []
    with run_service_process(env, log_path=log_path) as (url, _):
        # Which worker accepts a connection is the kernel's choice: burst until both have
        # answered, so that the count below really spans two processes.
        for _ in range(BURSTS_TO_REACH_BOTH_WORKERS):
            responses += asyncio.run(_burst(f"{url}/api/jobs/jsearch", REQUESTS // 2))
            if len(responses) >= REQUESTS and len(_workers_that_answered(log_path)) == 2:
                break
        ready = httpx.get(f"{url}/ready").json()
    assert len(_workers_that_answered(log_path)) == 2, "the bursts never reached both workers"
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == LIMIT
    assert statuses.count(429) == len(responses) - LIMIT
    limited = next(r for r in responses if r.status_code == 429)
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert ready["checks"]["rate_limit_store"] == {"status": "up"}


def test_limit_answers_429_with_retry_after(
    run_service: ServiceRunner, fakes: FakeUpstreams
) -> None:
    with run_service(rate_limit="3/minute") as url:
        statuses = [
            httpx.post(f"{url}/api/jobs/theirstack", json={"jobTitle": "x"}).status_code
            for _ in range(5)
        ]
        health = httpx.get(f"{url}/health")
    assert statuses == [200, 200, 200, 429, 429]
    assert health.status_code == 200, "only searches are limited"


def test_redis_outage_lets_searches_through(
    run_service: ServiceRunner, fakes: FakeUpstreams
) -> None:
    with run_service(redis_url="redis://127.0.0.1:1/0", rate_limit="1/minute") as url:
        statuses = {
            httpx.post(f"{url}/api/jobs/theirstack", json={"jobTitle": "y"}).status_code
            for _ in range(3)
        }
        ready = httpx.get(f"{url}/ready").json()
    assert statuses == {200}
    assert ready["status"] == "degraded"
    assert ready["checks"]["rate_limit_store"] == {"status": "down"}
