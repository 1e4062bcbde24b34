"""Per-client limit on searches, shared by all workers through Redis when configured.

The algorithm is limits' sliding-window counter, in both stores: two counters
per client, O(1) whatever the limit. With Redis, the checks a worker makes at
the same moment share one round trip (script_batching), running limits' own
Lua script on limits' own keys, so limits reads the windows it would have
written (Retry-After comes from its window stats).

Where the count is kept per process (no Redis configured, or Redis down), each
process allows its share of the limit: RATE_LIMIT divided by the processes of
the deployment (REPLICAS x WORKERS), at least 1. So an outage of Redis keeps
the limit roughly whole instead of lifting it. The fallback is logged once when
it starts and once when Redis answers again, and /ready reports it.
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
# A Redis command that waits longer than this fails: a rate-limit check then counts
# in this process, and coalescing lets the worker call for itself.
REDIS_TIMEOUT_SECONDS = 0.5
# While Redis is down, the limiter tries it again this often (one check at a time
# pays for the try); the others count in memory at once.
REDIS_RETRY_SECONDS = 1.0


def redis_client(redis_url: str) -> Redis:
    """The client a worker uses for its own Redis commands."""
    return Redis.from_url(
        redis_url,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
    )


def window_keys(item: RateLimitItem, client: str) -> tuple[str, str]:
    """(previous, current) window keys, as limits' Redis storage names them."""
    current = f"{KEY_PREFIX}:{{{item.key_for(SCOPE, client)}}}"
    return f"{current}/-1", current


def process_share(item: RateLimitItem, processes: int) -> RateLimitItem:
    """This process's share of a limit that `processes` processes enforce together."""
    return type(item)(max(1, item.amount // max(1, processes)), item.multiples, item.namespace)


class SearchRateLimiter:
    def __init__(self, rate: str, client: Redis | None, *, processes: int = 1) -> None:
        """`client`: the worker's Redis client, closed by whoever passed it; limits'
        storage (window stats, health) shares its connection pool. None: the limit is
        kept in memory, per process. `processes`: how many processes the deployment
        runs (REPLICAS x WORKERS), which a per-process count divides the limit by."""
        self.item: RateLimitItem = parse(rate)
        self.local_item = process_share(self.item, processes)
        memory = cast(Storage, storage_from_string("async+memory://"))
        self.local = SlidingWindowCounterRateLimiter(memory)
        self.shared = client is not None
        # True from a failed Redis check until a Redis check succeeds again.
        self.store_down = False
        self._retry_at = 0.0
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
            self.limiter = SlidingWindowCounterRateLimiter(self.storage)
        else:
            self.storage = memory
            self.limiter = self.local

    @property
    def fallback_limit(self) -> str:
        """The per-process limit in effect while the count is kept in memory."""
        return str(self.local_item)

    async def check(self, client: str) -> None:
        """Raise RateLimited when this client (an address, or a named end user) is over
        its limit.

        If Redis fails, this process counts the client against its share of the limit
        (process_share) until Redis answers again: refusing every search would turn a
        small outage into a full one, and allowing every search would lift the limit.
        """
        acquire = self._acquire
        if acquire is None or (self.store_down and time.monotonic() < self._retry_at):
            await self._check_locally(client)
            return
        try:
            if await self._hit(acquire, client):
                self._note_store_up()
                return
            stats = await self.limiter.get_window_stats(self.item, SCOPE, client)
        except (StorageError, RedisError) as exc:
            cause = exc.storage_error if isinstance(exc, StorageError) else exc
            self._note_store_down(type(cause).__name__)
            await self._check_locally(client)
            return
        self._note_store_up()
        raise RateLimited(retry_after=_seconds_until(stats.reset_time))

    async def _check_locally(self, client: str) -> None:
        if await self.local.hit(self.local_item, SCOPE, client):
            return
        stats = await self.local.get_window_stats(self.local_item, SCOPE, client)
        raise RateLimited(retry_after=_seconds_until(stats.reset_time))

    def _note_store_down(self, error: str) -> None:
        self._retry_at = time.monotonic() + REDIS_RETRY_SECONDS
        if not self.store_down:
            self.store_down = True
            log.warning(
                "rate_limit_store_unavailable",
                error=error,
                fallback="memory",
                limit_per_process=self.fallback_limit,
            )

    def _note_store_up(self) -> None:
        if self.store_down:
            self.store_down = False
            log.info("rate_limit_store_recovered")

    async def _hit(self, acquire: BatchedScript, client: str) -> bool:
        acquired = await acquire(
            window_keys(self.item, client), (self.item.amount, self.item.get_expiry(), 1)
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


def _seconds_until(reset_time: float) -> int:
    return max(1, math.ceil(reset_time - time.time()))
