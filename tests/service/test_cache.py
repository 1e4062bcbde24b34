"""The two cache layers: expiry in memory, purging in Postgres, rows the service cannot read."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

from infra.standins.app import StandinState
from jobsearch import cache as cache_module
from jobsearch.breaker import CircuitBreaker, CircuitState
from jobsearch.cache import CacheUnavailable, MemoryCache, PostgresCache
from jobsearch.models import Job, JobSearchRequest, JobSearchResponse
from tests.conftest import ServiceRunner

EMPTY = JobSearchResponse(jobs=[], total=0)


def test_memory_entries_expire_with_their_ttl() -> None:
    cache = MemoryCache(ttl_seconds=0.2)
    cache.put("jsearch", "k", b"{}")
    assert cache.get("jsearch", "k") == b"{}"
    assert cache.get("theirstack", "k") is None
    time.sleep(0.3)
    assert cache.get("jsearch", "k") is None


def test_rows_round_trip_and_expired_rows_are_purged(
    app_database_url: str, migrated_database: str
) -> None:
    request = JobSearchRequest.model_validate({"jobTitle": "purge me"})

    async def scenario() -> tuple[JobSearchResponse | None, JobSearchResponse | None]:
        cache = PostgresCache(app_database_url, ttl_minutes=5)
        await cache.open()
        try:
            await cache.put("jsearch", request, EMPTY)
            fresh = await cache.get("jsearch", request)
            with psycopg.connect(migrated_database, autocommit=True) as admin:
                admin.execute("update job_cache set expires_at = now() - interval '1 second'")
            expired = await cache.get("jsearch", request)
            await cache.purge_expired()
            return fresh, expired
        finally:
            await cache.close()

    fresh, expired = asyncio.run(scenario())
    assert fresh == EMPTY
    assert expired is None
    with psycopg.connect(migrated_database) as admin:
        assert admin.execute("select count(*) from job_cache").fetchone() == (0,)


def test_a_refused_value_ends_a_trial_and_the_cache_stays_in_use(app_database_url: str) -> None:
    request = JobSearchRequest.model_validate({"jobTitle": "nul byte"})
    # Postgres' jsonb refuses the NUL character: a DataError from a database that is up.
    refused = JobSearchResponse(
        jobs=[
            Job(
                id="1", title="dev\u0000ops", company="c", location="", city="", state="",
                country="", salary="", type="", remote=False, posted="", description="",
                apply_link="https://example.com/1",
            )
        ],
        total=1,
    )  # fmt: skip

    async def scenario() -> JobSearchResponse | None:
        cache = PostgresCache(app_database_url, ttl_minutes=5)
        await cache.open()
        try:
            # Half-open at once: the next call is the one trial.
            cache.breaker = CircuitBreaker(failure_threshold=1, reset_after_seconds=0)
            cache.breaker.record_failure()
            with pytest.raises(CacheUnavailable, match="UntranslatableCharacter"):
                await cache.put("jsearch", request, refused)
            await cache.put("jsearch", request, EMPTY)
            return await cache.get("jsearch", request)
        finally:
            await cache.close()

    assert asyncio.run(scenario()) == EMPTY


def _drifted_row(migrated_database: str, request: JobSearchRequest) -> None:
    """A row as another generation of the service wrote it: its job lacks `applyLink`."""
    job = {
        "id": "old-1", "title": "Schema Drift", "company": "c", "location": "", "city": "",
        "state": "", "country": "", "salary": "", "type": "", "remote": False, "posted": "",
        "description": "",
    }  # fmt: skip
    with psycopg.connect(migrated_database, autocommit=True) as admin:
        admin.execute(
            "insert into job_cache (source, request_hash, request, response, expires_at)"
            " values ('jsearch', %s, '{}', %s, now() + interval '1 hour')",
            (request.cache_key, Jsonb({"jobs": [job], "total": 1})),
        )


def test_a_row_the_model_cannot_read_is_a_miss_and_is_replaced(
    run_service: ServiceRunner, fakes: StandinState, migrated_database: str
) -> None:
    _drifted_row(migrated_database, JobSearchRequest.model_validate({"jobTitle": "schema drift"}))
    with run_service() as url:
        # Another case, the same key.
        first = httpx.post(f"{url}/api/jobs/jsearch", json={"jobTitle": "Schema Drift"})
    assert first.status_code == 200, first.text
    assert first.headers["x-cache"] == "miss"
    assert fakes.jsearch.calls == 1
    with run_service() as other_replica:  # a fresh memory cache: the row was replaced
        again = httpx.post(f"{other_replica}/api/jobs/jsearch", json={"jobTitle": "schema drift"})
    assert again.headers["x-cache"] == "hit"
    assert again.json() == first.json()
    assert fakes.jsearch.calls == 1


def test_an_empty_result_lives_shorter_in_memory() -> None:
    cache = MemoryCache(ttl_seconds=10, empty_ttl_seconds=0.2)
    cache.put("jsearch", "found", b'{"jobs":[{}],"total":1}')
    cache.put("jsearch", "none", b'{"jobs":[],"total":0}', empty=True)
    time.sleep(0.3)
    assert cache.get("jsearch", "found") is not None
    assert cache.get("jsearch", "none") is None


def test_an_empty_result_is_stored_with_the_shorter_ttl(
    service_url: str, fakes: StandinState, migrated_database: str
) -> None:
    fakes.theirstack.script = ["empty"]
    for title in ("nothing here", "something here"):
        response = httpx.post(f"{service_url}/api/jobs/theirstack", json={"jobTitle": title})
        assert response.status_code == 200
    with psycopg.connect(migrated_database) as admin:
        rows = admin.execute(
            "select (response->>'total')::int, extract(epoch from expires_at - created_at)"
            " from job_cache order by 1"
        ).fetchall()
    ttls = {total: round(float(seconds)) for total, seconds in rows}
    assert ttls[0] < ttls[15] == 60 * 60
    assert ttls[0] == cache_module.EMPTY_RESULT_TTL_MINUTES * 60


def _expired_rows(admin: psycopg.Connection[Any], count: int) -> None:
    admin.execute(
        "insert into job_cache (source, request_hash, request, response, expires_at)"
        " select 'jsearch', lpad(n::text, 64, '0'), '{}', '{}', now() - interval '1 minute'"
        " from generate_series(1, %s) as n",
        (count,),
    )


LOCKED = "1".zfill(64)  # the first of _expired_rows


def test_the_purge_deletes_in_batches_and_skips_a_locked_row(
    app_database_url: str, migrated_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_module, "PURGE_BATCH_ROWS", 100, raising=False)
    with psycopg.connect(migrated_database, autocommit=True) as admin:
        _expired_rows(admin, 250)
        with psycopg.connect(migrated_database) as holder:  # a session holding one row
            holder.execute(f"select 1 from job_cache where request_hash = '{LOCKED}' for update")

            async def scenario() -> tuple[int, float, CircuitState]:
                cache = PostgresCache(app_database_url, ttl_minutes=5)
                await cache.open()
                try:
                    started = time.monotonic()
                    purged = await cache.purge_expired()
                    return purged, time.monotonic() - started, cache.breaker.state
                finally:
                    await cache.close()

            purged, took, state = asyncio.run(scenario())
        left = admin.execute("select request_hash from job_cache").fetchall()
    assert (purged, left, state) == (249, [(LOCKED,)], CircuitState.CLOSED)
    assert took < 1.5


def test_a_failing_purge_stays_outside_the_breaker(
    app_database_url: str, migrated_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_module, "PURGE_STATEMENT_TIMEOUT_MS", 300, raising=False)
    request = JobSearchRequest.model_validate({"jobTitle": "after a failed purge"})
    with psycopg.connect(migrated_database, autocommit=True) as admin:
        _expired_rows(admin, 1)
        with psycopg.connect(migrated_database) as holder:  # the table locked for a while
            holder.execute("lock table job_cache in access exclusive mode")

            async def purge() -> CircuitState:
                cache = PostgresCache(app_database_url, ttl_minutes=5)
                await cache.open()
                try:
                    with pytest.raises(CacheUnavailable):
                        await cache.purge_expired()
                    return cache.breaker.state
                finally:
                    await cache.close()

            assert asyncio.run(purge()) is CircuitState.CLOSED

    async def search_afterwards() -> JobSearchResponse | None:
        cache = PostgresCache(app_database_url, ttl_minutes=5)
        await cache.open()
        try:
            await cache.put("jsearch", request, EMPTY)
            return await cache.get("jsearch", request)
        finally:
            await cache.close()

    assert asyncio.run(search_afterwards()) == EMPTY


def test_the_pool_fits_the_connection_budget_through_a_rollout(app_database_url: str) -> None:
    # 0 gave up after the first failed reconnection, refilling only on demand.
    assert PostgresCache(app_database_url, ttl_minutes=5).pool.reconnect_timeout >= 60
    budget = cache_module.DATABASE_CONNECTION_BUDGET
    for workers in (1, 2):
        pool = PostgresCache(app_database_url, ttl_minutes=5, workers=workers).pool
        # Every worker of every replica, old and new side by side during a rollout.
        assert pool.max_size >= 1
        assert pool.max_size * workers * cache_module.REPLICAS_AT_MOST * 2 <= budget
