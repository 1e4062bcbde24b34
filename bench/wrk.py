"""wrk (Debian's package) for throughput: requests per second, and its latency percentiles.

A Lua script makes wrk POST a search (or GET) and print its summary as one JSON
line, which `run_wrk` reads. The per-request outcomes a benchmark checks before
it trusts a figure come from harness.load, not from here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
