"""Load generators: wrk for throughput, a bounded asyncio/httpx client for everything else.

wrk (Debian's package) measures requests per second; a Lua script makes it
POST a search and print its summary as JSON. The httpx client sends a fixed
list of requests at a fixed concurrency and keeps every outcome, so that a
benchmark can check that no request failed before it trusts a figure.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from bench.report import BenchError

WRK_MARKER = "WRK_JSON "
_WRK_SCRIPT = """
wrk.method = "{method}"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{marker}{{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p99_ms: float

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def ensure_wrk() -> str:
    """Path of wrk, installed from Debian when missing (root only)."""
    found = shutil.which("wrk")
    if found:
        return found
    from infra.local.engine import EngineError, apt_install

    try:
        apt_install("wrk")
    except EngineError as error:
        raise BenchError(str(error)) from None
    found = shutil.which("wrk")
    if found is None:
        raise BenchError("wrk is still missing after installing Debian's wrk package")
    return found


def run_wrk(
    url: str,
    *,
    body: dict[str, Any] | None,
    seconds: float,
    connections: int,
    threads: int = 1,
    timeout_seconds: int = 10,
) -> WrkResult:
    """POST `body` (or GET when None) to `url` for `seconds` with `connections` open."""
    wrk = ensure_wrk()
    encoded = json.dumps(body) if body is not None else ""
    if "]==]" in encoded:
        raise BenchError("the request body cannot be embedded in wrk's Lua script")
    script_text = _WRK_SCRIPT.format(
        method="POST" if body is not None else "GET", body=encoded, marker=WRK_MARKER
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(script_text)
    try:
        completed = subprocess.run(
            [
                wrk,
                f"--threads={threads}",
                f"--connections={connections}",
                f"--duration={max(1, round(seconds))}s",
                f"--timeout={timeout_seconds}s",
                f"--script={script.name}",
                url,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=seconds + timeout_seconds + 30,
        )
    finally:
        Path(script.name).unlink(missing_ok=True)
    line = next(
        (item for item in completed.stdout.splitlines() if item.startswith(WRK_MARKER)), None
    )
    if completed.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({completed.returncode}): {completed.stderr.strip()[-300:]}")
    summary = json.loads(line.removeprefix(WRK_MARKER))
    return WrkResult(
        requests=summary["requests"],
        seconds=summary["duration_us"] / 1e6,
        non_2xx=summary["status"],
        socket_errors=sum(summary[key] for key in ("connect", "read", "write", "timeout")),
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
    )


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class Outcome:
    call: Call
    status: int | None  # None: no HTTP answer at all
    seconds: float
    failure: str | None = None  # the transport error, when there was no answer
    error_code: str | None = None  # the JSON error body's code on 4xx/5xx
    json_body: bool = False  # whether a 4xx/5xx body was JSON (other bodies are not read)
    cache: str | None = None  # X-Cache
    # No byte of an answer came back before the connection closed or was reset.
    unanswered: bool = False


# What httpx says when a kept-alive connection was closed before any byte of
# the answer came back, or (ReadError) was reset as the request reached it.
# Caddy closes idle client connections when it reloads; a request sent on one
# at that instant meets this. Browsers resend a request whose reused
# connection closed unanswered, whatever its method (Chromium's
# ShouldResendRequest), and HTTP/2 clients retry the streams a GOAWAY names.
_CLOSED_BEFORE_ANSWER = "Server disconnected without sending a response."


def closed_before_answer(error: httpx.HTTPError) -> bool:
    if isinstance(error, httpx.RemoteProtocolError):
        return str(error) == _CLOSED_BEFORE_ANSWER
    return isinstance(error, httpx.ReadError)


def _error_code(response: httpx.Response) -> tuple[str | None, bool]:
    try:
        body = response.json()
    except ValueError:
        return None, False
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        return (str(code) if code is not None else None), True
    return None, True


async def _send(client: httpx.AsyncClient, call: Call) -> Outcome:
    started = time.perf_counter()
    try:
        response = await client.request(call.method, call.path, json=call.body)
    except httpx.HTTPError as error:
        return Outcome(
            call,
            None,
            time.perf_counter() - started,
            failure=f"{type(error).__name__}: {error}",
            unanswered=closed_before_answer(error),
        )
    elapsed = time.perf_counter() - started
    # Only an error's body is read: parsing every search result would load the generator.
    code, is_json = _error_code(response) if response.is_error else (None, False)
    return Outcome(
        call,
        response.status_code,
        elapsed,
        error_code=code,
        json_body=is_json,
        cache=response.headers.get("x-cache"),
    )


async def send_all(
    base_url: str, calls: Sequence[Call], *, concurrency: int, request_timeout: float = 60
) -> list[Outcome]:
    """Every call, at most `concurrency` at a time, in order of start; outcomes in call order."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(
        base_url=base_url, timeout=request_timeout, limits=limits
    ) as client:

        async def one(call: Call) -> Outcome:
            async with gate:
                return await _send(client, call)

        return list(await asyncio.gather(*(one(call) for call in calls)))


def run_calls(
    base_url: str, calls: Sequence[Call], *, concurrency: int, timeout: float = 60
) -> tuple[list[Outcome], float]:
    """`send_all` from synchronous code; also returns the wall time of the whole batch."""
    started = time.perf_counter()
    outcomes = asyncio.run(
        send_all(base_url, calls, concurrency=concurrency, request_timeout=timeout)
    )
    return outcomes, time.perf_counter() - started


def require_all_ok(what: str, outcomes: Sequence[Outcome]) -> None:
    bad = [outcome for outcome in outcomes if outcome.status != 200]
    if bad:
        first = bad[0]
        raise BenchError(
            f"{what}: {len(bad)} of {len(outcomes)} requests failed "
            f"(first: {first.status or first.failure} {first.error_code or ''}); "
            "the figure would be meaningless"
        )


class HealthPoller:
    """Polls a URL on a fixed schedule from a process of its own (bench/poller.py).

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
                "bench.poller",
                self.url,
                str(self.interval_seconds),
                str(self.timeout),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        first = self._process.stdout.readline().strip()
        if first != "ready":
            self._process.kill()
            raise BenchError(f"the /health poller did not start: {first or 'no output'}")
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
            raise BenchError("the /health poller did not finish") from None
        if self._process.returncode != 0 or not output.strip():
            raise BenchError(f"the /health poller failed with {self._process.returncode}")
        results = json.loads(output.strip().splitlines()[-1])
        self.latencies_ms = results["latencies_ms"]
        self.failures = results["failures"]


@dataclass
class LoadTally:
    total: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    caches: Counter[str] = field(default_factory=Counter)  # X-Cache of the searches
    failures: list[str] = field(default_factory=list)
    # Requests sent a second time because the first went unanswered (see `resend`).
    resent: list[str] = field(default_factory=list)


class BackgroundLoad:
    """`concurrency` clients send `calls` in turn, back to back, in a thread, until stopped.

    Bounded in time whatever happens. A failure is any answer but 200, or a
    transport error; each is kept with what was sent. With `resend`, a request
    whose kept-alive connection closed before any answer is sent once more, as
    browsers do; such resends are kept apart and the second outcome counts.
    """

    def __init__(
        self,
        base_url: str,
        calls: Sequence[Call],
        *,
        concurrency: int = 16,
        max_seconds: float = 300,
        timeout: float = 30,
        resend: bool = False,
    ) -> None:
        if not calls:
            raise ValueError("BackgroundLoad needs at least one call")
        self.base_url = base_url
        self.calls = list(calls)
        self.concurrency = concurrency
        self.max_seconds = max_seconds
        self.timeout = timeout
        self.resend = resend
        self.tally = LoadTally()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._crash: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def total(self) -> int:
        with self._lock:
            return self.tally.total

    @property
    def failed(self) -> int:
        with self._lock:
            return len(self.tally.failures)

    @property
    def resent(self) -> int:
        with self._lock:
            return len(self.tally.resent)

    def caches(self) -> Counter[str]:
        with self._lock:
            return Counter(self.tally.caches)

    def _record(self, outcome: Outcome) -> None:
        with self._lock:
            self.tally.total += 1
            if outcome.status is not None:
                self.tally.statuses[outcome.status] += 1
            if outcome.cache is not None:
                self.tally.caches[outcome.cache] += 1
            if outcome.status != 200:
                reason = outcome.failure or f"HTTP {outcome.status} {outcome.error_code or ''}"
                self.tally.failures.append(f"{outcome.call.method} {outcome.call.path}: {reason}")

    async def _client_loop(self, client: httpx.AsyncClient, offset: int, deadline: float) -> None:
        # Client n sends calls n, n + concurrency, ...: together, each call once per cycle.
        index = offset
        while not self._stop.is_set() and time.monotonic() < deadline:
            call = self.calls[index % len(self.calls)]
            outcome = await _send(client, call)
            if outcome.unanswered and self.resend:
                with self._lock:
                    self.tally.resent.append(f"{call.method} {call.path}: {outcome.failure}")
                outcome = await _send(client, call)
            self._record(outcome)
            index += self.concurrency

    async def _main(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        limits = httpx.Limits(max_connections=self.concurrency)
        async with httpx.AsyncClient(
            base_url=self.base_url, timeout=self.timeout, limits=limits
        ) as client:
            await asyncio.gather(
                *(self._client_loop(client, n, deadline) for n in range(self.concurrency))
            )

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:  # re-raised by wait_for and __exit__: never a quiet tally
            self._crash = error

    def _raise_if_crashed(self) -> None:
        if self._crash is not None:
            raise BenchError(f"the load generator crashed: {self._crash!r}") from self._crash

    def wait_for(self, requests: int, timeout: float = 120) -> None:
        """Block until at least `requests` requests have completed in all."""
        deadline = time.monotonic() + timeout
        while self.total < requests:
            if time.monotonic() > deadline or not self._thread.is_alive():
                self._raise_if_crashed()
                raise BenchError(f"only {self.total} of {requests} requests completed")
            time.sleep(0.02)

    def __enter__(self) -> BackgroundLoad:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout + 10)
        if exc_type is None:
            self._raise_if_crashed()
