"""Identical concurrent misses share one paid upstream call."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.fakes.upstreams import FakeUpstreams

CONCURRENT = 20


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
