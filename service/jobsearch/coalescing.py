"""One upstream call per distinct search across every worker and replica.

Within a process, concurrent identical misses already share one task
(search.py). Across processes they meet in Redis: the first to `SET NX` a
claim for the search makes the paid call and publishes the rendered answer
under a result key; the others wait for that key instead of calling too. A
claim expires on its own, so a worker that dies mid-call blocks nobody for
longer than one search may take. If Redis fails, each process simply calls
for itself: coalescing saves money, it must never cost availability.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

import redis.asyncio as redis
from redis.exceptions import RedisError

from jobsearch.logging_setup import get_logger

log = get_logger(__name__)

RESULT_TTL_MS = 60_000
POLL_SECONDS = 0.05
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Claim:
    key: str
    token: str


class SharedClaims:
    """Claims in `client`, the worker's Redis client (the app's lifespan owns and closes it)."""

    def __init__(self, client: redis.Redis, *, claim_seconds: float) -> None:
        self.client = client
        self.claim_ms = int(claim_seconds * 1000)
        self._release = self.client.register_script(_RELEASE)

    @staticmethod
    def _names(source: str, key: str) -> tuple[str, str]:
        return f"jobsearch:claim:{source}:{key}", f"jobsearch:result:{source}:{key}"

    async def claim(self, source: str, key: str) -> Claim | None:
        """The claim when this process should call; None when another process already is.

        Raises RedisError when Redis cannot say: the caller then calls itself.
        """
        claim_name, _ = self._names(source, key)
        token = uuid.uuid4().hex
        won = await self.client.set(claim_name, token, nx=True, px=self.claim_ms)
        return Claim(claim_name, token) if won else None

    async def publish(self, source: str, key: str, body: bytes, claim: Claim) -> None:
        _, result_name = self._names(source, key)
        try:
            await self.client.set(result_name, body, px=RESULT_TTL_MS)
            await self._release(keys=[claim.key], args=[claim.token])
        except RedisError as exc:
            log.warning("coalescing_publish_failed", error=type(exc).__name__)

    async def abandon(self, claim: Claim) -> None:
        """Give the claim up after a failed call, so that waiters call for themselves."""
        try:
            await self._release(keys=[claim.key], args=[claim.token])
        except RedisError as exc:
            log.warning("coalescing_release_failed", error=type(exc).__name__)

    async def wait_for_result(self, source: str, key: str) -> bytes | None:
        """The answer another process publishes, or None once its claim is gone without one."""
        claim_name, result_name = self._names(source, key)
        deadline = time.monotonic() + self.claim_ms / 1000
        while time.monotonic() < deadline:
            try:
                body, claimed = await self.client.mget(result_name, claim_name)
            except RedisError:
                return None
            if body is not None:
                return body if isinstance(body, bytes) else body.encode()
            if claimed is None:
                return None
            await asyncio.sleep(POLL_SECONDS)
        return None
