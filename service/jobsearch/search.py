"""A search from request to response: cache, coalescing, upstream, store."""

from __future__ import annotations

import asyncio
from typing import Protocol

from jobsearch.breaker import CircuitBreaker
from jobsearch.cache import CacheUnavailable, MemoryCache, PostgresCache
from jobsearch.context import current_facts
from jobsearch.errors import SourceNotConfigured
from jobsearch.logging_setup import get_logger
from jobsearch.metrics import CACHE_LOOKUPS
from jobsearch.models import MAX_JOBS_PER_SOURCE, Job, JobSearchRequest, JobSearchResponse

log = get_logger(__name__)

NO_JOBS_HINT = (
    "No jobs matched. Try a broader job title, leave out the city or salary, "
    "or choose a longer date range."
)


class SourceClient(Protocol):
    @property
    def source(self) -> str: ...

    @property
    def breaker(self) -> CircuitBreaker: ...

    @property
    def quota_remaining(self) -> int | None: ...

    async def search(self, search: JobSearchRequest) -> list[Job]: ...

    async def aclose(self) -> None: ...


class SearchService:
    def __init__(
        self,
        clients: dict[str, SourceClient | None],
        memory: MemoryCache,
        database: PostgresCache | None,
    ) -> None:
        self.clients = clients
        self.memory = memory
        self.database = database
        self._in_flight: dict[tuple[str, str], asyncio.Task[JobSearchResponse]] = {}

    def configured_sources(self) -> list[str]:
        return [name for name, client in self.clients.items() if client is not None]

    async def search(self, source: str, request: JobSearchRequest) -> JobSearchResponse:
        facts = current_facts()
        facts.source = source
        client = self.clients.get(source)
        if client is None:
            raise SourceNotConfigured()
        key = request.cache_key()

        cached = self.memory.get(source, key)
        if cached is None:
            cached, facts.cache = await self._lookup_database(source, request)
            if cached is not None:
                self.memory.put(source, key, cached)
        else:
            facts.cache = "hit"
        if cached is not None:
            CACHE_LOOKUPS.labels(source, "hit").inc()
            return cached

        shared = self._in_flight.get((source, key))
        if shared is not None:
            facts.cache = "coalesced"
            CACHE_LOOKUPS.labels(source, "coalesced").inc()
            return await asyncio.shield(shared)
        CACHE_LOOKUPS.labels(source, facts.cache).inc()
        task = asyncio.create_task(self._fetch_and_store(client, source, request))
        self._in_flight[(source, key)] = task
        task.add_done_callback(lambda done: self._forget(source, key, done))
        # Shielded: if this client goes away, the call still completes for the others.
        return await asyncio.shield(task)

    async def _lookup_database(
        self, source: str, request: JobSearchRequest
    ) -> tuple[JobSearchResponse | None, str]:
        if self.database is None:
            return None, "bypass"
        try:
            found = await self.database.get(source, request)
        except CacheUnavailable:
            return None, "bypass"
        return found, "hit" if found is not None else "miss"

    async def _fetch_and_store(
        self, client: SourceClient, source: str, request: JobSearchRequest
    ) -> JobSearchResponse:
        jobs = (await client.search(request))[:MAX_JOBS_PER_SOURCE]
        response = JobSearchResponse(
            jobs=jobs, total=len(jobs), hint=None if jobs else NO_JOBS_HINT
        )
        self.memory.put(source, request.cache_key(), response)
        if self.database is not None:
            try:
                await self.database.put(source, request, response)
            except CacheUnavailable:
                current_facts().cache = "bypass"
        return response

    def _forget(self, source: str, key: str, done: asyncio.Task[JobSearchResponse]) -> None:
        self._in_flight.pop((source, key), None)
        if not done.cancelled():
            done.exception()  # retrieved here so that an unawaited failure is not reported twice

    async def aclose(self) -> None:
        for client in self.clients.values():
            if client is not None:
                await client.aclose()
