"""Per-client-IP limit on searches, shared by all workers through Redis when configured.

The algorithm is limits' sliding-window counter, in both stores: two counters
per client, O(1) whatever the limit. With Redis, the checks a worker makes at
the same moment share one round trip (script_batching), running limits' own
Lua script on limits' own keys, so limits reads the windows it would have
written (Retry-After comes from its window stats).
"""

from __future__ import annotations

import math
import time
from typing import cast

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from limits.storage import RedisStorage, storage_from_string
from redis.asyncio import Redis
from redis.exceptions import RedisError

from jobsearch.errors import RateLimited
from jobsearch.logging_setup import get_logger
from jobsearch.script_batching import BatchedScript

log = get_logger(__name__)

KEY_PREFIX = "jobsearch"
SCOPE = "search"
# A Redis command that waits longer than this fails: a rate-limit check then lets
# the search through, and coalescing lets the worker call for itself.
REDIS_TIMEOUT_SECONDS = 0.5


def redis_client(redis_url: str) -> Redis:
    """The client a worker uses for its own Redis commands."""
    return Redis.from_url(
        redis_url,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
    )


def window_keys(item: RateLimitItem, client_ip: str) -> tuple[str, str]:
    """(previous, current) window keys, as limits' Redis storage names them."""
    current = f"{KEY_PREFIX}:{{{item.key_for(SCOPE, client_ip)}}}"
    return f"{current}/-1", current


class SearchRateLimiter:
    def __init__(self, rate: str, client: Redis | None) -> None:
        """`client`: the worker's Redis client, closed by whoever passed it; limits'
        storage (window stats, health) shares its connection pool. None: the limit is
        kept in memory, per worker."""
        self.item: RateLimitItem = parse(rate)
        self.shared = client is not None
        self._acquire: BatchedScript | None = None
        if client is not None:
            self._acquire = BatchedScript(client, RedisStorage.SCRIPT_ACQUIRE_SLIDING_WINDOW)
            self.storage = cast(
                Storage,
                storage_from_string(
                    # The pool decides where and how to connect; the URI names the storage.
                    "async+redis://",
                    implementation="redispy",
                    wrap_exceptions=True,
                    key_prefix=KEY_PREFIX,
                    # limits hands its options to redis-py, which takes a pool; limits'
                    # annotation lists scalar options only.
                    connection_pool=client.connection_pool,  # type: ignore[arg-type]
                ),
            )
        else:
            self.storage = cast(Storage, storage_from_string("async+memory://"))
        self.limiter = SlidingWindowCounterRateLimiter(self.storage)

    async def check(self, client_ip: str) -> None:
        """Raise RateLimited when this address is over its limit.

        If Redis fails the request is let through: refusing every search because
        the limiter's store is down would turn a small outage into a full one.
        """
        try:
            if await self._hit(client_ip):
                return
            stats = await self.limiter.get_window_stats(self.item, SCOPE, client_ip)
        except (StorageError, RedisError) as exc:
            cause = exc.storage_error if isinstance(exc, StorageError) else exc
            log.warning("rate_limit_store_unavailable", error=type(cause).__name__)
            return
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(retry_after=retry_after)

    async def _hit(self, client_ip: str) -> bool:
        if self._acquire is None:
            return await self.limiter.hit(self.item, SCOPE, client_ip)
        acquired = await self._acquire(
            window_keys(self.item, client_ip), (self.item.amount, self.item.get_expiry(), 1)
        )
        return bool(acquired)

    async def aclose(self) -> None:
        if self._acquire is not None:
            await self._acquire.aclose()

    async def healthy(self) -> bool:
        try:
            return bool(await self.storage.check())
        except Exception:
            return False
