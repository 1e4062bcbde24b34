"""Servers run as processes of their own: the service, the benchmarks' baselines, the fakes.

Each runs on a free port of 127.0.0.1 in its own session and logs to a file.
Stopping one signals its process group only: the processes it started
(uvicorn's workers with it). The suite and the benchmarks share this runner.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from harness.servers import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 30.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# How many concurrent bursts a test may send to a 2-worker service before both
# workers have answered part of one. asyncio accepts connections in a loop, so one
# worker often takes a whole burst (about two in three here); 20 tries leave a
# chance of about 1 in 5,000 that the test cannot span both.
BURSTS_TO_REACH_BOTH_WORKERS = 20


class ServerError(Exception):
    """A server did not start; the message carries the end of its log."""


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def rss_kib(pid: int) -> int:
    """Resident set size of one process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ServerError(f"process {pid} reports no VmRSS")


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: uvicorn's spawned workers, or the
        process itself when it runs a single worker."""
        workers = [pid for pid in _children(self.process.pid) if "spawn_main" in _cmdline(pid)]
        return workers or [self.process.pid]

    def cpu_seconds(self) -> float:
        """CPU time used so far by every process serving requests (and uvicorn's supervisor)."""
        pids = {self.process.pid, *self.worker_pids()}
        return sum(cpu_seconds(pid) for pid in pids)

    def log_tail(self, lines: int = 5) -> str:
        if not self.log_path.exists():
            return "(no log)"
        tail = self.log_path.read_text(errors="replace").strip().splitlines()[-lines:]
        return " / ".join(tail)[-800:] or "(empty log)"


def _wait_until_answers(server: Server, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerError(
                f"{server.name} exited with {server.process.returncode}: {server.log_tail()}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.url + path, timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise ServerError(f"{server.name} did not answer {path} in {timeout:.0f}s: {server.log_tail()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group we started (uvicorn's workers with it), then SIGKILL."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextlib.contextmanager
def serve(
    name: str,
    argv: list[str],
    env: Mapping[str, str],
    *,
    log_path: Path,
    health_path: str = "/health",
    port: int | None = None,
) -> Iterator[Server]:
    """Run `argv` with PORT (and HOST) set; yield once `health_path` answers 200.

    The working directory is the log's, never the repository: no developer's
    `.env` is read.
    """
    port = port or free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", tempfile.gettempdir()),
        "PYTHONPATH": f"{REPO_ROOT}:{REPO_ROOT / 'service'}",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        **env,
    }
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            argv,
            env=full_env,
            cwd=log_path.parent,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(name, f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_until_answers(server, health_path, START_TIMEOUT_SECONDS)
        yield server
    finally:
        stop(process)


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


@contextlib.contextmanager
def run_service_process(
    env: Mapping[str, str], *, log_path: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`jobsearch-api`, the console script, as its own process (with its own workers)."""
    script = Path(sys.executable).with_name("jobsearch-api")
    with serve("jobsearch-api", [str(script)], env, log_path=log_path) as server:
        yield server.url, server.process
