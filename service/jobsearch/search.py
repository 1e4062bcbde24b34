"""A search from request to response: cache, coalescing, upstream, store."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, TypeGuard

from redis.exceptions import RedisError

from jobsearch.breaker import CircuitBreaker
from jobsearch.budget import DailyBudgets
from jobsearch.cache import CacheUnavailable, MemoryCache, PostgresCache
from jobsearch.coalescing import SharedClaims
from jobsearch.context import current_facts
from jobsearch.errors import SourceNotConfigured, UpstreamCircuitOpen, UpstreamError
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
    """Answers hold the response body rendered once, so a cache hit is a lookup, not a render."""

    def __init__(
        self,
        clients: dict[str, SourceClient | None],
        memory: MemoryCache,
        database: PostgresCache | None,
        claims: SharedClaims | None = None,
        budgets: DailyBudgets | None = None,
    ) -> None:
        self.clients = clients
        self.memory = memory
        self.database = database
        self.claims = claims
        self.budgets = budgets or DailyBudgets({}, None)
        self._in_flight: dict[tuple[str, str], asyncio.Task[bytes]] = {}

    def configured_sources(self) -> list[str]:
        return [name for name, client in self.clients.items() if client is not None]

    async def search(self, source: str, request: JobSearchRequest) -> bytes:
        """The response body for this search, from a cache or from the source."""
        started = time.monotonic()
        facts = current_facts()
        facts.source = source
        client = self.clients.get(source)
        if client is None:
            raise SourceNotConfigured()
        key = request.cache_key

        cached = self.memory.get(source, key)
        if cached is None:
            cached, facts.cache = await self._lookup_database(source, request)
            if cached is not None:
                self._remember(source, key, cached)
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
        task = asyncio.create_task(self._fetch_once(client, source, request, started))
        self._in_flight[(source, key)] = task
        task.add_done_callback(lambda done: self._forget(source, key, done))
        # Shielded: if this client goes away, the call still completes for the others.
        return await asyncio.shield(task)

    async def _lookup_database(
        self, source: str, request: JobSearchRequest
    ) -> tuple[bytes | None, str]:
        if self.database is None:
            return None, "bypass"
        try:
            found = await self.database.get(source, request)
        except CacheUnavailable:
            return None, "bypass"
        if found is None:
            return None, "miss"
        return render(found), "hit"

    async def _fetch_once(
        self, client: SourceClient, source: str, request: JobSearchRequest, started: float
    ) -> bytes:
        """Call the source, unless another process is calling for the same search:
        then answer what that call gets, its error included."""
        facts = current_facts()
        claim = None
        if self.claims is not None:
            try:
                claim = await self.claims.claim(source, request.cache_key)
            except RedisError as exc:
                log.warning("coalescing_unavailable", error=type(exc).__name__)
            else:
                if claim is None:
                    body = await self._follow(self.claims, source, request.cache_key, started)
                    if body is not None:
                        self._remember(source, request.cache_key, body)
                        return body
        CACHE_LOOKUPS.labels(source, facts.cache or "miss").inc()
        try:
            body = await self._fetch_and_store(client, source, request)
        except BaseException as exc:
            if claim is not None and self.claims is not None:
                if _shareable(exc):
                    await self.claims.publish_error(source, request.cache_key, exc, claim)
                else:
                    await self.claims.abandon(claim)
            raise
        if claim is not None and self.claims is not None:
            await self.claims.publish(source, request.cache_key, body, claim)
        return body

    async def _follow(
        self, claims: SharedClaims, source: str, key: str, started: float
    ) -> bytes | None:
        """Wait for the other process's answer; None when this process must call itself."""
        facts = current_facts()
        try:
            body = await claims.wait_for_result(source, key, started=started)
        except UpstreamError:
            facts.cache = "coalesced"
            CACHE_LOOKUPS.labels(source, "coalesced").inc()
            raise
        if body is not None:
            facts.cache = "coalesced"
            CACHE_LOOKUPS.labels(source, "coalesced").inc()
        return body

    async def _fetch_and_store(
        self, client: SourceClient, source: str, request: JobSearchRequest
    ) -> bytes:
        # A miss: the paid call spends today's budget, or is refused once it is spent.
        await self.budgets.spend(source)
        jobs = (await client.search(request))[:MAX_JOBS_PER_SOURCE]
        response = JobSearchResponse(
            jobs=jobs, total=len(jobs), hint=None if jobs else NO_JOBS_HINT
        )
        body = render(response)
        self._remember(source, request.cache_key, body)
        if self.database is not None:
            try:
                await self.database.put(source, request, response)
            except CacheUnavailable:
                current_facts().cache = "bypass"
        return body

    def _remember(self, source: str, key: str, body: bytes) -> None:
        # An empty answer is kept for a shorter time: a new listing may appear any minute.
        self.memory.put(source, key, body, empty=body.startswith(_EMPTY_BODY_START))

    def _forget(self, source: str, key: str, done: asyncio.Task[bytes]) -> None:
        self._in_flight.pop((source, key), None)
        if not done.cancelled():
            done.exception()  # retrieved here so that an unawaited failure is not reported twice

    async def aclose(self) -> None:
        for client in self.clients.values():
            if client is not None:
                await client.aclose()


def _shareable(error: BaseException) -> TypeGuard[UpstreamError]:
    """Whether other processes waiting on this call should answer with its error.

    An open circuit is this worker's own view of the upstream: the others ask theirs.
    """
    return isinstance(error, UpstreamError) and not isinstance(error, UpstreamCircuitOpen)


def render(response: JobSearchResponse) -> bytes:
    """The wire form of a response, as FastAPI would write it (camelCase aliases)."""
    return response.model_dump_json(by_alias=True).encode()


# How every rendered answer without jobs begins ('{"jobs":[],'): `jobs` is the first field.
_EMPTY_BODY_START = render(JobSearchResponse(jobs=[], total=0)).split(b"]", 1)[0] + b"]"
