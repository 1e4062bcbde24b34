"""One upstream call per distinct search across every worker and replica.

Within a process, concurrent identical misses already share one task
(search.py). Across processes they meet in Redis: the first to claim the
search makes the paid call and publishes the rendered answer under a result
key, or, when the call fails, its error under an error key for a few
seconds; the others wait for either instead of calling too, and answer what
the leader got. A follower calls for itself only when the claim disappears
with neither (its leader died, or could not publish), and never waits longer
than the search's own time budget. A claim expires on its own, so a worker
that dies mid-call blocks nobody for longer than one search may take. If
Redis fails, each process simply calls for itself: coalescing saves money, it
must never cost availability.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass

import redis.asyncio as redis
from redis.exceptions import RedisError

from jobsearch.errors import UpstreamError, UpstreamTimeout, upstream_error_for
from jobsearch.logging_setup import get_logger

log = get_logger(__name__)

RESULT_TTL_MS = 60_000
# A leader's error answers its followers, and searches arriving meanwhile, this long.
ERROR_TTL_MS = 5_000
POLL_SECONDS = 0.05
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
# A new leader clears the error its predecessor left, in the same step as it claims.
_CLAIM = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('del', KEYS[2])
  return 1
end
return 0
"""


@dataclass(frozen=True)
class Claim:
    key: str
    token: str


class SharedClaims:
    """Claims in `client`, the worker's Redis client (the app's lifespan owns and closes it).

    `wait_seconds` bounds a follower's wait, counted from the start of its search:
    the search's time budget (by default, as long as a claim lives).
    """

    def __init__(
        self, client: redis.Redis, *, claim_seconds: float, wait_seconds: float | None = None
    ) -> None:
        self.client = client
        self.claim_ms = int(claim_seconds * 1000)
        self.wait_seconds = claim_seconds if wait_seconds is None else wait_seconds
        self._release = self.client.register_script(_RELEASE)
        self._claim = self.client.register_script(_CLAIM)

    @staticmethod
    def _names(source: str, key: str) -> tuple[str, str, str]:
        return (
            f"jobsearch:claim:{source}:{key}",
            f"jobsearch:result:{source}:{key}",
            f"jobsearch:error:{source}:{key}",
        )

    async def claim(self, source: str, key: str) -> Claim | None:
        """The claim when this process should call; None when another process already is.

        Raises RedisError when Redis cannot say: the caller then calls itself.
        """
        claim_name, _, error_name = self._names(source, key)
        token = uuid.uuid4().hex
        won = await self._claim(keys=[claim_name, error_name], args=[token, self.claim_ms])
        return Claim(claim_name, token) if won else None

    async def publish(self, source: str, key: str, body: bytes, claim: Claim) -> None:
        _, result_name, _ = self._names(source, key)
        try:
            await self.client.set(result_name, body, px=RESULT_TTL_MS)
            await self._release(keys=[claim.key], args=[claim.token])
        except RedisError as exc:
            log.warning("coalescing_publish_failed", error=type(exc).__name__)

    async def publish_error(
        self, source: str, key: str, error: UpstreamError, claim: Claim
    ) -> None:
        """The call failed: its waiters answer with this error rather than calling again."""
        _, _, error_name = self._names(source, key)
        marker = json.dumps({"code": error.code, "retry_after": error.retry_after})
        try:
            await self.client.set(error_name, marker, px=ERROR_TTL_MS)
        except RedisError as exc:
            log.warning("coalescing_publish_failed", error=type(exc).__name__)
        await self.abandon(claim)

    async def abandon(self, claim: Claim) -> None:
        """Give the claim up, so that waiters without a published answer call for themselves."""
        try:
            await self._release(keys=[claim.key], args=[claim.token])
        except RedisError as exc:
            log.warning("coalescing_release_failed", error=type(exc).__name__)

    async def wait_for_result(self, source: str, key: str, *, started: float) -> bytes | None:
        """The answer another process publishes, or None once its claim is gone without one.

        Raises the error the other process published instead, and UpstreamTimeout
        when the search's budget (`wait_seconds` after `started`, a monotonic time)
        runs out first.
        """
        claim_name, result_name, error_name = self._names(source, key)
        deadline = started + self.wait_seconds
        while True:
            try:
                body, error, claimed = await self.client.mget(result_name, error_name, claim_name)
            except RedisError:
                return None
            if body is not None:
                return body if isinstance(body, bytes) else body.encode()
            if error is not None:
                published = _published_error(error)
                if published is not None:
                    raise published
            if claimed is None:
                return None
            if time.monotonic() + POLL_SECONDS >= deadline:
                log.info("coalescing_wait_exhausted_budget", source=source)
                raise UpstreamTimeout()
            await asyncio.sleep(POLL_SECONDS)


def _published_error(marker: bytes | str) -> UpstreamError | None:
    try:
        fields = json.loads(marker)
        code, retry_after = str(fields["code"]), fields["retry_after"]
    except (ValueError, TypeError, KeyError):
        return None
    if retry_after is not None and not isinstance(retry_after, int):
        retry_after = None
    return upstream_error_for(code, retry_after=retry_after)
