"""The rate limit holds across uvicorn workers through Redis, and by a per-process share
of it while Redis is down."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import redis

from harness.processes import BURSTS_TO_REACH_BOTH_WORKERS, run_service_process
from harness.servers import closed_port, free_port
from infra.standins.app import JSEARCH_KEY, THEIRSTACK_KEY, StandinState
from infra.topology import Images, TopologySpec, describe
from jobsearch.ratelimit import SearchRateLimiter
from jobsearch.settings import settings_from
from tests.conftest import ServiceRunner

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
    tmp_path: Path, fakes: StandinState, fakes_url: str, app_database_url: str
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
    assert ready["checks"]["rate_limit_store"] == {
        "status": "up",
        "fallback": None,
        "limit_per_process": None,
    }


def test_limit_answers_429_with_retry_after(
    run_service: ServiceRunner, fakes: StandinState
) -> None:
    with run_service(rate_limit="3/minute") as url:
        statuses = [
            httpx.post(f"{url}/api/jobs/theirstack", json={"jobTitle": "x"}).status_code
            for _ in range(5)
        ]
        health = httpx.get(f"{url}/health")
    assert statuses == [200, 200, 200, 429, 429]
    assert health.status_code == 200, "only searches are limited"


def _log_events(log_path: Path, event: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == event]


def _process_env(fakes_url: str, redis_port: int, rate_limit: str, replicas: int) -> dict[str, str]:
    return {
        "WORKERS": "1",
        "REPLICAS": str(replicas),
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "RATE_LIMIT": rate_limit,
        "RAPID_API_KEY": JSEARCH_KEY,
        "THEIRSTACK_API_KEY": THEIRSTACK_KEY,
        "JSEARCH_BASE_URL": fakes_url,
        "THEIRSTACK_BASE_URL": fakes_url,
    }


def _search(url: str) -> int:
    return httpx.post(f"{url}/api/jobs/jsearch", json={"jobTitle": "z"}).status_code


def test_redis_outage_falls_back_to_this_process_share_of_the_limit(
    tmp_path: Path, fakes: StandinState, fakes_url: str
) -> None:
    log_path = tmp_path / "service.log"
    # 4/minute over 2 replicas of 1 worker: 2 a minute for this process while Redis is down.
    env = _process_env(fakes_url, closed_port(), "4/minute", replicas=2)
    with run_service_process(env, log_path=log_path) as (url, _):
        statuses = [_search(url) for _ in range(4)]
        ready = httpx.get(f"{url}/ready").json()
    assert statuses == [200, 200, 429, 429]
    assert ready["status"] == "degraded"
    assert ready["checks"]["rate_limit_store"] == {
        "status": "down",
        "fallback": "memory",
        "limit_per_process": "2 per 1 minute",
    }
    assert len(_log_events(log_path, "rate_limit_store_unavailable")) == 1


@contextlib.contextmanager
def _private_redis(port: int) -> Iterator[None]:
    """A Redis of this test's own (no persistence), stopped on leaving."""
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_fallback_is_logged_once_each_way_and_the_shared_limit_comes_back(
    tmp_path: Path, fakes: StandinState, fakes_url: str
) -> None:
    log_path = tmp_path / "service.log"
    port = free_port()
    # 6/minute over 3 replicas: 2 for this process while Redis is down.
    env = _process_env(fakes_url, port, "6/minute", replicas=3)
    with run_service_process(env, log_path=log_path) as (url, _):
        with _private_redis(port):
            shared = [_search(url)]
        fallback = [_search(url) for _ in range(3)]
        down = httpx.get(f"{url}/ready").json()
        with _private_redis(port):
            time.sleep(1.5)  # the limiter tries Redis again after a second
            back = [_search(url) for _ in range(3)]
            ready = httpx.get(f"{url}/ready").json()
    assert shared == [200]
    assert fallback == [200, 200, 429]
    assert down["checks"]["rate_limit_store"]["status"] == "down"
    assert back == [200, 200, 200], "the shared count (a fresh Redis) is used again"
    assert ready["checks"]["rate_limit_store"] == {
        "status": "up",
        "fallback": None,
        "limit_per_process": None,
    }
    assert len(_log_events(log_path, "rate_limit_store_unavailable")) == 1
    assert len(_log_events(log_path, "rate_limit_store_recovered")) == 1


def test_the_topology_tells_each_process_how_many_share_the_limit() -> None:
    spec = TopologySpec(environment="test", images=Images(service="jobsearch-api:test"),
                        replicas=3, workers=2, settings={"RATE_LIMIT": "30/minute"})  # fmt: skip
    env = describe(spec).api.env
    assert env["REPLICAS"] == "3"
    settings = settings_from(env)
    assert settings.processes == 6
    limiter = SearchRateLimiter(settings.rate_limit, None, processes=settings.processes)
    assert limiter.fallback_limit == "5 per 1 minute"
