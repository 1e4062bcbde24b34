"""The machine services the suite and the benchmarks talk to: start them when they have stopped.

These are the commands the machine itself uses to start them (see README,
"Running the tests"); CI runs on a fresh machine where they may be down.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_for(port: int, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not _listening(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} is not listening on 127.0.0.1:{port}")
        time.sleep(0.2)


def ensure_postgres() -> None:
    if _listening(5432):
        return
    versions = sorted(path.name for path in Path("/etc/postgresql").glob("*"))
    if not versions or not shutil.which("pg_ctlcluster"):
        raise RuntimeError("PostgreSQL is not installed; install postgresql from Debian")
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"], check=True
    )
    _wait_for(5432, "PostgreSQL")


def ensure_redis() -> None:
    if _listening(6379):
        return
    subprocess.run(
        [
            "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1",
            "--port", "6379", "--save", "", "--appendonly", "no",
        ],
        check=True,
    )  # fmt: skip
    _wait_for(6379, "Redis")
