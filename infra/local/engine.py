"""A running Docker engine, installed and started here when the machine has none.

A new machine (a fresh CI box) has no engine: Debian's `docker.io` brings one,
and dockerd runs in the background, logging to the local state directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import docker
from docker.errors import DockerException
from requests.exceptions import RequestException

ENGINE_PACKAGE = "docker.io"
START_TIMEOUT_SECONDS = 90


class EngineError(Exception):
    """The engine is missing and cannot be installed or started from here."""


def _client_if_running() -> docker.DockerClient | None:
    try:
        client = docker.from_env(timeout=300)
        client.ping()
    except (DockerException, RequestException):
        return None
    return client


def apt_install(*packages: str) -> None:
    """Install Debian packages; only root can, so say what to run otherwise."""
    if os.geteuid() != 0:
        raise EngineError(
            f"{' '.join(packages)} missing: run `sudo apt-get install -y {' '.join(packages)}`"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
    ):
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise EngineError(f"`{' '.join(command)}` failed: {' / '.join(tail)}")


def ensure_engine(log_dir: Path) -> docker.DockerClient:
    """A client of a running engine; installs docker.io and starts dockerd if needed."""
    client = _client_if_running()
    if client is not None:
        return client
    if shutil.which("dockerd") is None:
        apt_install(ENGINE_PACKAGE)
    if os.geteuid() != 0:
        raise EngineError("the Docker engine is not running: start it with `sudo dockerd &`")
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "dockerd.log"
    with log_path.open("ab") as log_file:
        # Its own session: dockerd outlives this process (and the test run).
        subprocess.Popen(
            ["dockerd"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        client = _client_if_running()
        if client is not None:
            return client
        time.sleep(0.5)
    tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
    raise EngineError(
        f"dockerd did not answer within {START_TIMEOUT_SECONDS}s; last lines of {log_path}: "
        + " / ".join(tail)
    )
