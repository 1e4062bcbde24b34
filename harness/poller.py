"""A /health poller on a fixed schedule, in a process of its own.

`HealthPoller` (the parent's side) starts `python -m harness.poller URL
INTERVAL TIMEOUT`, which prints `ready` once the first poll has answered and,
when its stdin closes, one JSON line: {"latencies_ms": [...], "failures": [...]}.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from types import TracebackType

import httpx

from harness.load import LoadError


class HealthPoller:
    """Polls a URL on a fixed schedule from a process of its own (`python -m harness.poller`).

    A process, so that the load generator beside it cannot delay it (they would
    share the GIL in one process). A fixed schedule, not back to back, so that a
    server that stalls is seen stalling by every poll that falls due meanwhile
    (a back-to-back poller waits politely and records one slow sample).
    """

    def __init__(self, url: str, *, interval_seconds: float = 0.01, timeout: float = 60) -> None:
        self.url = url
        self.interval_seconds = interval_seconds
        self.timeout = timeout
        self.latencies_ms: list[float] = []
        self.failures: list[str] = []
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> HealthPoller:
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness.poller",
                self.url,
                str(self.interval_seconds),
                str(self.timeout),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        stdout = self._process.stdout
        first = stdout.readline().strip() if stdout is not None else ""
        if first != "ready":
            self._process.kill()
            raise LoadError(f"the /health poller did not start: {first or 'no output'}")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._process is None:
            return
        try:
            output, _ = self._process.communicate(timeout=self.timeout + 30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            raise LoadError("the /health poller did not finish") from None
        if self._process.returncode != 0 or not output.strip():
            raise LoadError(f"the /health poller failed with {self._process.returncode}")
        results = json.loads(output.strip().splitlines()[-1])
        self.latencies_ms = results["latencies_ms"]
        self.failures = results["failures"]


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
