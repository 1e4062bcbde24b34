"""Concurrent script calls share round trips to the machine's real Redis, and fail cleanly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
import redis
from limits import parse
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from jobsearch.ratelimit import KEY_PREFIX, SCOPE, SearchRateLimiter
from jobsearch.script_batching import BatchedScript

REDIS_DB = 9  # this module's own database on the machine's Redis
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
# Returns the counter after incrementing it: each call's result is its own.
COUNT = "return redis.call('INCR', KEYS[1]) * tonumber(ARGV[1])"

T = TypeVar("T")


@pytest.fixture(autouse=True)
def empty_database() -> None:
    redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB).flushdb()


def _run(make: Callable[[Redis], Awaitable[T]], url: str = REDIS_URL) -> T:
    async def main() -> T:
        client = Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            return await make(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def test_concurrent_calls_share_round_trips_and_each_gets_its_own_result() -> None:
    async def calls(client: Redis) -> tuple[list[Any], int]:
        script = BatchedScript(client, COUNT)
        results = await asyncio.gather(*(script(["counter"], [1]) for _ in range(50)))
        await script.aclose()
        return results, script.round_trips

    results, round_trips = _run(calls)
    assert sorted(results) == list(range(1, 51))
    # The first call goes alone; the 49 made while it was out go together.
    assert round_trips <= 3, round_trips


def test_calls_one_after_another_each_take_one_round_trip() -> None:
    async def calls(client: Redis) -> tuple[list[Any], int]:
        script = BatchedScript(client, COUNT)
        results = [await script(["counter"], [2]) for _ in range(3)]
        return results, script.round_trips

    assert _run(calls) == ([2, 4, 6], 3)


def test_a_flushed_script_cache_is_reloaded() -> None:
    async def calls(client: Redis) -> list[Any]:
        script = BatchedScript(client, COUNT)
        first = await script(["counter"], [1])
        await client.script_flush()  # what a Redis restart does to loaded scripts
        together = await asyncio.gather(*(script(["counter"], [1]) for _ in range(5)))
        await client.script_flush()  # and again before a call that goes alone, not piped
        alone = await script(["counter"], [1])
        return [first, *together, alone]

    assert sorted(_run(calls)) == list(range(1, 8))


def test_an_unreachable_redis_fails_every_waiting_call_quickly() -> None:
    async def calls(client: Redis) -> list[Any]:
        script = BatchedScript(client, COUNT)
        return await asyncio.gather(
            *(script(["counter"], [1]) for _ in range(10)), return_exceptions=True
        )

    started = time.monotonic()
    results = _run(calls, url="redis://127.0.0.1:1/0")
    assert all(isinstance(result, RedisConnectionError) for result in results), results
    assert time.monotonic() - started < 5


def test_a_caller_that_goes_away_does_not_stop_the_others() -> None:
    async def calls(client: Redis) -> list[Any]:
        script = BatchedScript(client, COUNT)
        first = asyncio.ensure_future(script(["counter"], [1]))
        doomed = asyncio.ensure_future(script(["counter"], [1]))
        rest = [asyncio.ensure_future(script(["counter"], [1])) for _ in range(3)]
        await asyncio.sleep(0)
        doomed.cancel()
        return await asyncio.gather(first, *rest)

    results = _run(calls)
    assert len(results) == 4
    assert len(set(results)) == 4


def test_the_limiter_writes_the_windows_limits_reads() -> None:
    """Our hits land on limits' keys: limits' own window stats count them."""

    async def calls(client: Redis) -> tuple[int, list[str]]:
        limiter = SearchRateLimiter("10/minute", client)
        for _ in range(4):
            await limiter.check("203.0.113.7")
        stats = await SlidingWindowCounterRateLimiter(limiter.storage).get_window_stats(
            parse("10/minute"), SCOPE, "203.0.113.7"
        )
        stored = await client.keys("*")
        keys = sorted(key.decode() if isinstance(key, bytes) else key for key in stored)
        await limiter.aclose()
        return stats.remaining, keys

    remaining, keys = _run(calls)
    assert remaining == 6
    assert keys
    assert all(key.startswith(f"{KEY_PREFIX}:{{") for key in keys), keys
