"""Per-client-IP limit on searches, shared by all workers through Redis when configured."""

from __future__ import annotations

import math
import time
from typing import cast

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string

from jobsearch.errors import RateLimited
from jobsearch.logging_setup import get_logger

log = get_logger(__name__)


class SearchRateLimiter:
    def __init__(self, rate: str, redis_url: str | None) -> None:
        self.item: RateLimitItem = parse(rate)
        self.shared = redis_url is not None
        self.storage = cast(
            Storage,
            (
                storage_from_string(
                    f"async+{redis_url}",
                    implementation="redispy",
                    wrap_exceptions=True,
                    key_prefix="jobsearch",
                    socket_timeout=0.5,
                    socket_connect_timeout=0.5,
                    # One connection, commands in turn: a third cheaper per check than
                    # a pool, and a check holds it for one round trip only.
                    single_connection_client=True,
                )
                if redis_url
                else storage_from_string("async+memory://")
            ),
        )
        # A sliding-window counter: two counters per client, O(1) whatever the limit
        # (a moving window keeps one entry per request and slows down as limits grow).
        self.limiter = SlidingWindowCounterRateLimiter(self.storage)

    async def check(self, client_ip: str) -> None:
        """Raise RateLimited when this address is over its limit.

        If Redis fails the request is let through: refusing every search because
        the limiter's store is down would turn a small outage into a full one.
        """
        try:
            if await self.limiter.hit(self.item, "search", client_ip):
                return
            stats = await self.limiter.get_window_stats(self.item, "search", client_ip)
        except StorageError as exc:
            log.warning("rate_limit_store_unavailable", error=type(exc.storage_error).__name__)
            return
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(retry_after=retry_after)

    async def aclose(self) -> None:
        # limits has no close of its own; its Redis client would be left to the GC,
        # which then complains that the event loop is gone.
        client = getattr(getattr(self.storage, "bridge", None), "storage", None)
        if client is not None:
            await client.aclose()

    async def healthy(self) -> bool:
        try:
            return bool(await self.storage.check())
        except Exception:
            return False
