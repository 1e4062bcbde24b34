"""One Redis round trip for every call of a Lua script made in the same moment.

Each search checks the rate limit in Redis. Sent one by one, each check is a
write, a wake-up and a read, about 125 µs of a worker's CPU; under load that
was most of what a cache hit cost. Calls that arrive while a round trip is
already out wait for it to return and then go together, as one pipeline:
an idle worker still answers after one round trip, a busy one pays a few
tens of µs per check. redis-py has pipelines but nothing that fills them from
concurrent callers, and limits calls Redis once per check; so this is ours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

Call = tuple[Sequence[str], Sequence[int | str], "asyncio.Future[Any]"]


class BatchedScript:
    def __init__(self, client: Redis, script: str | bytes) -> None:
        self.client = client
        self.script = script
        self.sha: str | None = None
        self._waiting: list[Call] = []
        self._sender: asyncio.Task[None] | None = None
        self.round_trips = 0  # pipelines and single commands sent, for tests and benchmarks

    async def __call__(self, keys: Sequence[str], args: Sequence[int | str]) -> Any:
        """The script's result for these keys and arguments; raises what Redis raised."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((keys, args, future))
        if self._sender is None or self._sender.done():
            # Started now, it first runs on the loop's next turn: every call made
            # until then goes in the same pipeline.
            self._sender = asyncio.create_task(self._send_while_waiting())
        return await future

    async def _send_while_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                results = await self._run(batch)
            except asyncio.CancelledError:
                for _, _, future in batch:
                    future.cancel()
                raise
            except Exception as error:
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, _, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue  # its caller went away
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def _run(self, batch: list[Call]) -> list[Any]:
        sha = self.sha or await self._load()
        results = await self._pipeline(sha, batch)
        if any(isinstance(result, NoScriptError) for result in results):
            # Redis restarted or was flushed: the script is gone from its cache.
            results = await self._pipeline(await self._load(), batch)
        return results

    async def _load(self) -> str:
        self.sha = str(await self.client.script_load(self.script))
        return self.sha

    async def _pipeline(self, sha: str, batch: list[Call]) -> list[Any]:
        self.round_trips += 1
        if len(batch) == 1:
            # A pipeline of one costs more than the plain command.
            keys, args, _ = batch[0]
            try:
                return [await self.client.evalsha(sha, len(keys), *keys, *args)]
            except NoScriptError as error:
                return [error]
        pipeline = self.client.pipeline(transaction=False)
        for keys, args, _ in batch:
            pipeline.evalsha(sha, len(keys), *keys, *args)
        results: list[Any] = await pipeline.execute(raise_on_error=False)
        return results

    async def aclose(self) -> None:
        if self._sender is not None:
            await asyncio.gather(self._sender, return_exceptions=True)
