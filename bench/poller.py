"""`python -m bench.poller URL INTERVAL TIMEOUT`: poll URL on a fixed schedule until stdin closes.

Prints `ready` once the first poll has answered, then, when its stdin
closes, one JSON line: {"latencies_ms": [...], "failures": [...]}. Run by
bench.load.HealthPoller as a process of its own.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx


async def poll(
    url: str, interval_seconds: float, request_timeout: float
) -> tuple[list[float], list[str]]:
    latencies: list[float] = []
    failures: list[str] = []
    pending: set[asyncio.Task[None]] = set()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Stop when the parent closes our stdin (or dies).
    loop.add_reader(sys.stdin.fileno(), stop.set)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=request_timeout, limits=limits) as client:

        async def one(due: float) -> None:
            try:
                response = await client.get(url)
                if response.status_code != 200:
                    failures.append(f"HTTP {response.status_code}")
            except httpx.HTTPError as error:
                failures.append(type(error).__name__)
            # From when the poll was due: a poll that could not even be sent counts too.
            latencies.append((time.perf_counter() - due) * 1000)

        await client.get(url)  # connected and warm before the measurement starts
        print("ready", flush=True)
        due = time.perf_counter()
        while not stop.is_set():
            task = asyncio.create_task(one(due))
            pending.add(task)
            task.add_done_callback(pending.discard)
            due += interval_seconds
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
        if pending:
            await asyncio.wait(pending, timeout=request_timeout)
    return latencies, failures


def main() -> None:
    url, interval, timeout = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    latencies, failures = asyncio.run(poll(url, interval, timeout))
    print(json.dumps({"latencies_ms": latencies, "failures": failures}), flush=True)


if __name__ == "__main__":
    main()
