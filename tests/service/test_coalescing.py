"""Identical concurrent misses share one paid upstream call."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
import redis

from tests.fakes.upstreams import THEIRSTACK_KEY, FakeUpstreams
from tests.support.processes import BURSTS_TO_REACH_BOTH_WORKERS, run_service_process

CONCURRENT = 20
REDIS_DB = 8  # this module's own database on the machine's Redis


async def _fire(url: str, body: dict[str, str], count: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30) as client:
        return list(await asyncio.gather(*(client.post(url, json=body) for _ in range(count))))


@pytest.mark.parametrize("source", ["jsearch", "theirstack"])
def test_20_concurrent_identical_misses_make_one_upstream_call(
    service_url: str, fakes: FakeUpstreams, source: str
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


def test_a_shared_failure_reaches_every_waiter_once(service_url: str, fakes: FakeUpstreams) -> None:
    fakes.theirstack.default = "malformed_json"
    fakes.theirstack.latency_seconds = 0.5
    responses = asyncio.run(
        _fire(f"{service_url}/api/jobs/theirstack", {"jobTitle": "go engineer"}, 10)
    )
    assert {r.status_code for r in responses} == {502}
    assert fakes.theirstack.calls == 1


def test_different_searches_are_not_coalesced(service_url: str, fakes: FakeUpstreams) -> None:
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
    tmp_path: Path, fakes: FakeUpstreams, fakes_url: str, app_database_url: str
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
