"""Identical concurrent misses share one paid upstream call."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest
import redis
import redis.asyncio

from harness.processes import BURSTS_TO_REACH_BOTH_WORKERS, run_service_process
from infra.standins.app import THEIRSTACK_KEY, StandinState
from jobsearch.coalescing import SharedClaims
from jobsearch.models import JobSearchRequest
from tests.conftest import ServiceRunner

CONCURRENT = 20
REDIS_DB = 8  # this module's own database on the machine's Redis


async def _fire(url: str, body: dict[str, str], count: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30) as client:
        return list(await asyncio.gather(*(client.post(url, json=body) for _ in range(count))))


@pytest.mark.parametrize("source", ["jsearch", "theirstack"])
def test_20_concurrent_identical_misses_make_one_upstream_call(
    service_url: str, fakes: StandinState, source: str
) -> None:
    upstream = getattr(fakes, source)
    upstream.default = "slow"
    upstream.delay_seconds = 0.5
    responses = asyncio.run(
        _fire(f"{service_url}/api/jobs/{source}", {"jobTitle": "rust engineer"}, CONCURRENT)
    )
    assert [r.status_code for r in responses] == [200] * CONCURRENT
    assert upstream.calls == 1
    assert len({r.content for r in responses}) == 1
    cache_states = sorted(r.headers["x-cache"] for r in responses)
    assert cache_states.count("miss") == 1
    assert cache_states.count("coalesced") == CONCURRENT - 1


def test_a_shared_failure_reaches_every_waiter_once(service_url: str, fakes: StandinState) -> None:
    fakes.theirstack.default = "malformed_json"
    fakes.theirstack.latency_seconds = 0.5
    responses = asyncio.run(
        _fire(f"{service_url}/api/jobs/theirstack", {"jobTitle": "go engineer"}, 10)
    )
    assert {r.status_code for r in responses} == {502}
    assert fakes.theirstack.calls == 1


def test_different_searches_are_not_coalesced(service_url: str, fakes: StandinState) -> None:
    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            return list(
                await asyncio.gather(
                    *(
                        client.post(f"{service_url}/api/jobs/jsearch", json={"jobTitle": f"t{i}"})
                        for i in range(5)
                    )
                )
            )

    assert {r.status_code for r in asyncio.run(run())} == {200}
    assert fakes.jsearch.calls == 5


def test_misses_on_different_workers_share_one_call_through_redis(
    tmp_path: Path, fakes: StandinState, fakes_url: str, app_database_url: str
) -> None:
    redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB).flushdb()
    fakes.theirstack.default = "slow"
    fakes.theirstack.delay_seconds = 1.0
    log_path = tmp_path / "service.log"
    env = {
        "WORKERS": "2",
        "REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
        "RATE_LIMIT": "1000/minute",
        "THEIRSTACK_API_KEY": THEIRSTACK_KEY,
        "THEIRSTACK_BASE_URL": fakes_url,
        "DATABASE_URL": app_database_url,
    }

    async def burst(url: str, title: str) -> list[httpx.Response]:
        async def one() -> httpx.Response:
            # A client each: separate connections, which the kernel spreads over workers.
            async with httpx.AsyncClient(timeout=30) as client:
                return await client.post(url, json={"jobTitle": title})

        return list(await asyncio.gather(*(one() for _ in range(CONCURRENT))))

    with run_service_process(env, log_path=log_path) as (url, _):
        for attempt in range(BURSTS_TO_REACH_BOTH_WORKERS):
            title = f"cross-worker {attempt}"
            calls_before = fakes.theirstack.calls
            responses = asyncio.run(burst(f"{url}/api/jobs/theirstack", title))
            lines = [json.loads(line) for line in log_path.read_text().splitlines()]
            pids = {
                line["pid"]
                for line in lines
                if line.get("event") == "request"
                and line.get("source") == "theirstack"
                and line["request_id"] in {r.headers["x-request-id"] for r in responses}
            }
            if len(pids) == 2:
                break
    assert len(pids) == 2, "the bursts never reached both workers"
    assert [r.status_code for r in responses] == [200] * CONCURRENT
    assert fakes.theirstack.calls - calls_before == 1
    assert sorted(r.headers["x-cache"] for r in responses).count("miss") == 1


REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
TIMEOUT = 1.0  # UPSTREAM_TIMEOUT_SECONDS of the services under test: a search's budget is 3 s


def _timed_search(url: str, title: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.post(f"{url}/api/jobs/jsearch", json={"jobTitle": title}, timeout=30)
    return response, time.monotonic() - started


def test_followers_in_other_processes_get_the_leaders_error_without_calling(
    run_service: ServiceRunner, fakes: StandinState
) -> None:
    redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB).flushdb()
    fakes.jsearch.default = "server_error"
    fakes.jsearch.latency_seconds = 0.3  # each of the leader's 3 attempts

    async def leader_then_follower(first: str, second: str) -> list[tuple[httpx.Response, float]]:
        leader = asyncio.create_task(asyncio.to_thread(_timed_search, first, "leader fails"))
        await asyncio.sleep(0.1)  # the leader's claim is taken
        follower = asyncio.create_task(asyncio.to_thread(_timed_search, second, "leader fails"))
        return [await leader, await follower]

    # Two replicas: one Redis, each its own in-process coalescing.
    with run_service(redis_url=REDIS_URL) as first, run_service(redis_url=REDIS_URL) as second:
        (leader, leader_took), (follower, follower_took) = asyncio.run(
            leader_then_follower(first, second)
        )
    assert leader.status_code == follower.status_code == 502
    assert leader.json()["error"]["code"] == follower.json()["error"]["code"] == "upstream_error"
    assert fakes.jsearch.calls == 3, "the follower repeated the leader's failed call"
    assert follower_took < leader_took + 0.5


def test_a_followers_wait_is_bounded_by_the_search_budget(
    run_service: ServiceRunner, fakes: StandinState
) -> None:
    redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB).flushdb()
    request = JobSearchRequest.model_validate({"jobTitle": "stuck leader"})

    async def stuck_leader() -> None:
        # A claim held by a process that never publishes (stuck, or killed mid-call).
        client = redis.asyncio.Redis.from_url(REDIS_URL)
        try:
            claims = SharedClaims(client, claim_seconds=60)
            assert await claims.claim("jsearch", request.cache_key) is not None
        finally:
            await client.aclose()

    asyncio.run(stuck_leader())
    with run_service(redis_url=REDIS_URL, upstream_timeout_seconds=TIMEOUT) as url:
        response, took = _timed_search(url, "stuck leader")
    assert response.status_code == 504, response.text[:300]
    assert response.json()["error"]["code"] == "upstream_timeout"
    assert took < 3 * TIMEOUT + 0.5
    assert fakes.jsearch.calls == 0
