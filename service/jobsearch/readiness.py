"""What /ready reports about the dependencies, checked at most once per REFRESH_SECONDS.

A call to /ready used to ping the database and Redis itself, so a flood of
them could take the pool's connections and flap the database's breaker. Now
each worker keeps the last check: a call younger than REFRESH_SECONDS is
answered from it, and an older one waits for one new check that every
concurrent caller shares. The in-process facts (circuits, quotas, the budgets'
own counts) are read at each call: they cost nothing.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from jobsearch.cache import CacheUnavailable
from jobsearch.ratelimit import SearchRateLimiter
from jobsearch.search import SearchService

REFRESH_SECONDS = 1.0

DatabaseStatus = Literal["up", "down", "not_configured"]
StoreStatus = Literal["up", "down", "memory"]


@dataclass(frozen=True)
class DependencyState:
    checked_at: datetime
    database: DatabaseStatus
    database_latency_ms: float | None
    rate_limit_store: StoreStatus
    # time.monotonic() of the check
    taken: float


class Readiness:
    def __init__(
        self,
        search: SearchService,
        limiter: SearchRateLimiter,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
    ) -> None:
        self.search = search
        self.limiter = limiter
        self.refresh_seconds = refresh_seconds
        self._last: DependencyState | None = None
        self._checking: asyncio.Task[DependencyState] | None = None

    async def state(self) -> DependencyState:
        """The last check if it is recent enough, else one new check shared by every caller."""
        last = self._last
        if last is not None and time.monotonic() - last.taken < self.refresh_seconds:
            return last
        if self._checking is None or self._checking.done():
            self._checking = asyncio.create_task(self._check())
        # Shielded: a caller that goes away does not cancel the others' check.
        return await asyncio.shield(self._checking)

    async def _check(self) -> DependencyState:
        database: DatabaseStatus = "not_configured"
        latency_ms = None
        if self.search.database is not None:
            try:
                latency_ms = await self.search.database.ping()
                database = "up"
            except CacheUnavailable:
                database = "down"
        store: StoreStatus = "memory"
        if self.limiter.shared:
            store = "up" if await self.limiter.healthy() else "down"
        # Other processes spend the shared budgets too: read their counts with the rest.
        await self.search.budgets.refresh()
        state = DependencyState(
            checked_at=datetime.now(UTC),
            database=database,
            database_latency_ms=latency_ms,
            rate_limit_store=store,
            taken=time.monotonic(),
        )
        self._last = state
        return state
