"""Daily budgets of paid upstream calls, per source (JSEARCH_DAILY_BUDGET, THEIRSTACK_DAILY_BUDGET).

A search sent to a source spends one unit of that source's budget for the
current UTC day (its retries count once: a retry follows a failure the source
does not bill). Once a day's budget is spent, cache hits are still served and
misses are refused with 503 budget_exhausted, Retry-After pointing at the next
UTC midnight, when a new day's budget begins.

The count is shared by every worker and replica through Redis: an atomic INCR
on one key per source and UTC date, which expires two days later. When Redis is
unset or down, each process counts for itself, against its share of the budget
(the budget divided by REPLICAS x WORKERS, at least 1); the fallback is logged
once each way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from redis.asyncio import Redis
from redis.exceptions import RedisError

from jobsearch.errors import BudgetExhausted
from jobsearch.logging_setup import get_logger
from jobsearch.metrics import UPSTREAM_BUDGET_REMAINING

log = get_logger(__name__)

KEY_PREFIX = "jobsearch:budget"
# A day's counter outlives its day, so that yesterday's count can still be read.
KEY_TTL_SECONDS = 2 * 24 * 3600

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def budget_key(source: str, day: str) -> str:
    return f"{KEY_PREFIX}:{source}:{day}"


def seconds_until_next_utc_day(now: datetime) -> int:
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, math.ceil((midnight - now).total_seconds()))


@dataclass(frozen=True)
class BudgetState:
    """One source's budget for today, as this process last saw it."""

    limit: int | None
    remaining: int | None
    counted_in: Literal["redis", "memory"]
    resets_in_seconds: int

    @property
    def status(self) -> Literal["unlimited", "ok", "exhausted"]:
        if self.limit is None:
            return "unlimited"
        return "exhausted" if self.remaining == 0 else "ok"


class DailyBudgets:
    def __init__(
        self,
        limits: Mapping[str, int | None],
        client: Redis | None,
        *,
        processes: int = 1,
        clock: Clock = _utc_now,
    ) -> None:
        self.limits = dict(limits)
        self.client = client
        self.processes = max(1, processes)
        self.clock = clock
        self.store_down = False
        # Per-process counts, (source, day) -> calls, used when Redis is unset or down.
        self._local: dict[tuple[str, str], int] = {}
        # The last count seen in Redis, per source: (day, calls).
        self._shared: dict[str, tuple[str, int]] = {}
        for source, limit in self.limits.items():
            if limit is not None:
                UPSTREAM_BUDGET_REMAINING.labels(source).set(limit)

    def local_share(self, limit: int) -> int:
        """This process's share of a budget while it counts for itself."""
        return max(1, limit // self.processes) if limit > 0 else 0

    async def spend(self, source: str) -> None:
        """Count one upstream call of `source` today; raise BudgetExhausted (and count
        nothing) when today's budget is already spent."""
        limit = self.limits.get(source)
        if limit is None:
            return
        now = self.clock()
        day = now.date().isoformat()
        counted = await self._count_shared(source, day)
        if counted is not None:
            allowed = limit
        else:
            counted = self._local.get((source, day), 0) + 1
            self._local = {k: v for k, v in self._local.items() if k[1] == day}
            self._local[(source, day)] = counted
            allowed = self.local_share(limit)
        UPSTREAM_BUDGET_REMAINING.labels(source).set(max(0, allowed - counted))
        if counted > allowed:
            log.warning("upstream_budget_exhausted", source=source, limit=limit)
            raise BudgetExhausted(retry_after=seconds_until_next_utc_day(now))

    async def _count_shared(self, source: str, day: str) -> int | None:
        """The day's count after this call, from Redis; None when Redis is unset or down."""
        if self.client is None:
            return None
        key = budget_key(source, day)
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, KEY_TTL_SECONDS)
                counted, _ = await pipe.execute()
        except RedisError as exc:
            self._note_down(type(exc).__name__)
            return None
        self._note_up()
        self._shared[source] = (day, int(counted))
        return int(counted)

    async def refresh(self) -> None:
        """Read today's shared counts (other processes spend too), for /ready and /metrics."""
        if self.client is None:
            return
        day = self.clock().date().isoformat()
        limited = {source: limit for source, limit in self.limits.items() if limit is not None}
        if not limited:
            return
        try:
            values = await self.client.mget([budget_key(source, day) for source in limited])
        except RedisError as exc:
            self._note_down(type(exc).__name__)
            return
        self._note_up()
        for (source, limit), value in zip(limited.items(), values, strict=True):
            calls = int(value or 0)
            self._shared[source] = (day, calls)
            UPSTREAM_BUDGET_REMAINING.labels(source).set(max(0, limit - calls))

    def state(self, source: str) -> BudgetState:
        now = self.clock()
        day = now.date().isoformat()
        resets = seconds_until_next_utc_day(now)
        limit = self.limits.get(source)
        shared = self.client is not None and not self.store_down
        counted_in: Literal["redis", "memory"] = "redis" if shared else "memory"
        if limit is None:
            return BudgetState(None, None, counted_in, resets)
        if shared:
            seen_day, calls = self._shared.get(source, (day, 0))
            remaining = max(0, limit - (calls if seen_day == day else 0))
        else:
            calls = self._local.get((source, day), 0)
            remaining = max(0, self.local_share(limit) - calls)
        return BudgetState(limit, remaining, counted_in, resets)

    def _note_down(self, error: str) -> None:
        if not self.store_down:
            self.store_down = True
            log.warning("upstream_budget_store_unavailable", error=error, fallback="memory")

    def _note_up(self) -> None:
        if self.store_down:
            self.store_down = False
            log.info("upstream_budget_store_recovered")
