"""A server as a process of its own: started on PORT, measured from /proc, stopped by group."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import pytest

from harness.processes import ServerError, python_module, rss_kib, serve

# A server on PORT that answers /health, with a child in its process group
# (as uvicorn's workers are), and a log line to read back.
_SERVER = """
import http.server, os, subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print("started child", child.pid, flush=True)
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Health).serve_forever()
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_server_answers_on_its_port_and_stops_with_its_children(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with serve("tiny", [sys.executable, "-c", _SERVER], {}, log_path=log) as server:
        assert httpx.get(f"{server.url}/health", timeout=5).status_code == 200
        assert server.worker_pids() == [server.process.pid]
        assert rss_kib(server.process.pid) > 0
        assert server.cpu_seconds() >= 0
        assert "started child" in server.log_tail()
        child = int(server.log_tail().split("started child")[-1].split()[0])
        assert _alive(child)
    assert server.process.poll() is not None
    assert not _alive(child)


def test_a_server_that_exits_at_once_is_reported_with_its_log(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "print('no such setting: X'); raise SystemExit(3)"]
    with (
        pytest.raises(ServerError, match=r"broken exited with 3: no such setting: X"),
        serve("broken", argv, {}, log_path=tmp_path / "broken.log"),
    ):
        pass


def test_python_module_runs_this_interpreter() -> None:
    assert python_module("jobsearch", "--help") == [sys.executable, "-m", "jobsearch", "--help"]
