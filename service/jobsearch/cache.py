"""The search cache: a small in-process TTL cache in front of Postgres.

Postgres (Supabase in the stacks) is shared by every worker and replica; the
in-process layer saves a round trip for repeated searches on one worker.
The database is optional at run time: when it fails, callers get
`CacheUnavailable`, searches go on without it, and a breaker keeps requests
from waiting on a dead database until a probe finds it back.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from cachetools import TLRUCache
from psycopg import AsyncConnection
from psycopg.errors import DataError
from psycopg.errors import Error as PsycopgError
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from pydantic import ValidationError

from jobsearch.breaker import CircuitBreaker
from jobsearch.logging_setup import get_logger
from jobsearch.metrics import DATABASE_UP
from jobsearch.models import JobSearchRequest, JobSearchResponse

log = get_logger(__name__)

CONNECT_TIMEOUT_SECONDS = 2
# Connection budget. The database admits the service's role only so many server
# connections: behind Supabase's session pooler, the Pool Size per role and database
# (Database settings; 15 assumed here: one more client queues, then is refused). Every worker
# of every replica holds up to its pool's max_size, and a create-before-delete rollout
# runs the old and the new replicas side by side, so the pool is sized for
#     connections per worker x WORKERS x replicas x 2 <= DATABASE_CONNECTION_BUDGET
# Prod (2 workers x 3 replicas): 1 x 2 x 3 x 2 = 12; one worker alone gets 2. A cache
# statement takes about a millisecond, and the purge gives its connection back after
# each batch. Raise the budget together with the pooler's Pool Size (or the role's
# connection limit), and REPLICAS_AT_MOST with the stacks' replicas.
DATABASE_CONNECTION_BUDGET = 15
REPLICAS_AT_MOST = 3
# After a failed connection attempt the pool retries with backoff for this long, then
# gives up (reconnect_failed) and opens connections again on demand. 0 gave up at once.
RECONNECT_TIMEOUT_SECONDS = 300.0
STATEMENT_TIMEOUT_MS = 2000
POOL_WAIT_SECONDS = 1.0
RETRY_DATABASE_AFTER_SECONDS = 5.0
# An answer without jobs is kept this long at most (CACHE_TTL_MINUTES for the rest):
# a new listing may appear any minute, and an upstream's bad day can look like "none".
# A module constant rather than a setting: the settings are another change's.
EMPTY_RESULT_TTL_MINUTES = 5

_LOOKUP = """
    select response from job_cache
    where source = %s and request_hash = %s and expires_at > now()
"""
_UPSERT = """
    insert into job_cache (source, request_hash, request, response, expires_at)
    values (%s, %s, %s, %s, now() + make_interval(mins => %s))
    on conflict (source, request_hash) do update
    set request = excluded.request,
        response = excluded.response,
        created_at = now(),
        expires_at = excluded.expires_at
"""
# The purge runs apart from searches: its own, longer statement timeout, in batches
# that each end quickly, skipping rows another session holds, and outside the breaker
# (a slow purge must not send searches past the cache).
# Batches stay short: a worker's pool may hold one connection, which searches share.
PURGE_STATEMENT_TIMEOUT_MS = 10_000
PURGE_BATCH_ROWS = 1_000
_PURGE_BATCH = """
    delete from job_cache
    where (source, request_hash) in (
        select source, request_hash from job_cache
        where expires_at < now()
        limit %s
        for update skip locked
    )
"""


def _first(error: ValidationError) -> str:
    """Where and what the first problem is ("jobs.0.applyLink: missing"), never the value."""
    first = error.errors(include_input=False, include_url=False)[0]
    return f"{'.'.join(map(str, first['loc']))}: {first['type']}"


class CacheUnavailable(Exception):
    """The database could not be used just now."""


class MemoryCache:
    """Per-process cache of rendered response bodies; entries never outlive their TTL,
    and an empty answer never outlives `empty_ttl_seconds`."""

    def __init__(
        self,
        *,
        ttl_seconds: float,
        max_entries: int = 1024,
        empty_ttl_seconds: float | None = None,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.empty_ttl_seconds = ttl_seconds if empty_ttl_seconds is None else empty_ttl_seconds
        # Each entry carries its time to live; TLRUCache drops it that long after it
        # was stored (monotonic clock).
        self._entries: TLRUCache[tuple[str, str], tuple[bytes, float]] = TLRUCache(
            maxsize=max_entries, ttu=_expires_at
        )

    def get(self, source: str, key: str) -> bytes | None:
        entry = self._entries.get((source, key))
        return entry[0] if entry is not None else None

    def put(self, source: str, key: str, response: bytes, *, empty: bool = False) -> None:
        ttl = min(self.ttl_seconds, self.empty_ttl_seconds) if empty else self.ttl_seconds
        self._entries[(source, key)] = (response, ttl)

    def clear(self) -> None:
        self._entries.clear()


def connections_per_worker(workers: int) -> int:
    """This worker's share of DATABASE_CONNECTION_BUDGET, through a rollout (at least 1)."""
    return max(1, DATABASE_CONNECTION_BUDGET // (max(1, workers) * REPLICAS_AT_MOST * 2))


def _expires_at(key: tuple[str, str], entry: tuple[bytes, float], now: float) -> float:
    return now + entry[1]


async def _configure_connection(connection: AsyncConnection[Any]) -> None:
    await connection.execute(f"set statement_timeout = {STATEMENT_TIMEOUT_MS}")


class PostgresCache:
    def __init__(self, conninfo: str, *, ttl_minutes: int, workers: int = 1) -> None:
        self.ttl_minutes = ttl_minutes
        max_connections = connections_per_worker(workers)
        if max_connections * workers * REPLICAS_AT_MOST * 2 > DATABASE_CONNECTION_BUDGET:
            log.warning(
                "database_connection_budget_exceeded",
                workers=workers,
                budget=DATABASE_CONNECTION_BUDGET,
            )
        self.breaker = CircuitBreaker(
            failure_threshold=1,
            reset_after_seconds=RETRY_DATABASE_AFTER_SECONDS,
            # Twice the longest a statement may take: a pool wait, then the statement.
            trial_timeout_seconds=2 * (POOL_WAIT_SECONDS + STATEMENT_TIMEOUT_MS / 1000),
        )
        self.pool = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=max_connections,
            open=False,
            timeout=POOL_WAIT_SECONDS,
            check=AsyncConnectionPool.check_connection,
            configure=_configure_connection,
            reconnect_timeout=RECONNECT_TIMEOUT_SECONDS,
            kwargs={
                "autocommit": True,
                "connect_timeout": CONNECT_TIMEOUT_SECONDS,
                "application_name": "jobsearch-api",
                # Prepared statements break behind a transaction-mode pooler.
                "prepare_threshold": None,
            },
            name="job_cache",
        )

    async def open(self) -> None:
        # Do not wait: the service starts and serves even while the database is down.
        await self.pool.open(wait=False)

    async def close(self) -> None:
        await self.pool.close()

    @property
    def available(self) -> bool:
        return self.breaker.state != "open"

    async def get(self, source: str, request: JobSearchRequest) -> JobSearchResponse | None:
        """The stored answer, or None: none stored, or one this model cannot read
        (a miss, so that the search's answer replaces the row)."""
        row = await self._run(_LOOKUP, (source, request.cache_key), fetch=True)
        if row is None:
            return None
        try:
            return JobSearchResponse.model_validate(row[0])
        except ValidationError as exc:
            log.warning(
                "cache_row_unreadable", source=source, errors=exc.error_count(), first=_first(exc)
            )
            return None

    async def put(
        self, source: str, request: JobSearchRequest, response: JobSearchResponse
    ) -> None:
        await self._run(
            _UPSERT,
            (
                source,
                request.cache_key,
                Jsonb(request.model_dump(mode="json")),
                Jsonb(response.model_dump(mode="json", by_alias=True)),
                min(self.ttl_minutes, EMPTY_RESULT_TTL_MINUTES)
                if not response.jobs
                else self.ttl_minutes,
            ),
        )

    async def purge_expired(self) -> int:
        """Deletes expired rows, batch by batch; the number deleted.

        Raises CacheUnavailable if the database fails; the breaker is left alone.
        """
        purged = 0
        try:
            while True:
                # A connection per batch: searches take turns with the purge on a small pool.
                async with (
                    self.pool.connection(timeout=POOL_WAIT_SECONDS) as connection,
                    connection.transaction(),
                ):
                    await connection.execute(
                        f"set local statement_timeout = {int(PURGE_STATEMENT_TIMEOUT_MS)}"
                    )
                    cursor = await connection.execute(_PURGE_BATCH, (PURGE_BATCH_ROWS,))
                purged += max(cursor.rowcount, 0)
                if cursor.rowcount < PURGE_BATCH_ROWS:
                    break
        except (PsycopgError, PoolTimeout, OSError) as exc:
            log.warning("cache_purge_failed", error=type(exc).__name__, purged=purged)
            raise CacheUnavailable(type(exc).__name__) from None
        if purged:
            log.info("cache_purged", rows=purged)
        return purged

    async def ping(self) -> float:
        """Round trip in milliseconds. Probes even while the breaker is open."""
        started = time.monotonic()
        await self._run("select 1", (), fetch=True, probe=True)
        return round((time.monotonic() - started) * 1000, 1)

    async def _run(
        self,
        query: str,
        params: tuple[object, ...],
        *,
        fetch: bool = False,
        probe: bool = False,
    ) -> tuple[Any, ...] | None:
        if probe:
            # A probe goes even while the breaker refuses calls, and takes no trial.
            guard: AbstractContextManager[None] = nullcontext()
        elif self.breaker.allow():
            guard = self.breaker.guard()  # ends a half-open trial however the call ends
        else:
            raise CacheUnavailable("database skipped after a recent failure")
        with guard:
            return await self._execute(query, params, fetch=fetch)

    async def _execute(
        self, query: str, params: tuple[object, ...], *, fetch: bool
    ) -> tuple[Any, ...] | None:
        try:
            async with self.pool.connection(timeout=POOL_WAIT_SECONDS) as connection:
                cursor = await connection.execute(query, params)
                row = await cursor.fetchone() if fetch else None
        except DataError as exc:
            # The database is up and refused this one value: no reason to stop using it,
            # and an answer that ends a half-open trial.
            self.breaker.record_success()
            log.warning("cache_value_refused", error=type(exc).__name__)
            raise CacheUnavailable(type(exc).__name__) from None
        except (PsycopgError, PoolTimeout, OSError) as exc:
            was_up = self.breaker.state == "closed"
            self.breaker.record_failure()
            DATABASE_UP.set(0)
            if was_up:
                log.warning("cache_database_unavailable", error=type(exc).__name__)
            raise CacheUnavailable(type(exc).__name__) from None
        if self.breaker.state != "closed":
            log.info("cache_database_recovered")
        self.breaker.record_success()
        DATABASE_UP.set(1)
        return row
