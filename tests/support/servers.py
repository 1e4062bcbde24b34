"""Run ASGI apps on real sockets in a background thread, and the service as a process."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Literal

import httpx
import uvicorn
from starlette.types import ASGIApp

from jobsearch.server import HTTP_PROTOCOL


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port() -> int:
    """A port with nothing listening: connections to it are refused."""
    return free_port()


@contextlib.contextmanager
def serve_in_thread(
    app: ASGIApp,
    *,
    lifespan: Literal["on", "off"] = "on",
    tls: tuple[Path, Path] | None = None,
) -> Iterator[str]:
    """Serve `app` on a free loopback port in a thread; `tls` is (certificate, key)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    certificate, key = tls or (None, None)
    config = uvicorn.Config(
        app,
        lifespan=lifespan,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        http=HTTP_PROTOCOL,
        ssl_certfile=str(certificate) if certificate else None,
        ssl_keyfile=str(key) if key else None,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextlib.contextmanager
def run_service_process(
    env: Mapping[str, str], *, log_path: Path, ready_path: str = "/health"
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`jobsearch-api` as its own process (with its own workers), logging to a file."""
    port = free_port()
    full_env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        **env,
    }
    script = Path(sys.executable).with_name("jobsearch-api")
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [str(script)], env=full_env, stdout=log_file, stderr=subprocess.STDOUT, cwd="/"
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            wait_until_answers(base_url + ready_path, process)
            yield base_url, process
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()


def wait_until_answers(
    url: str, process: subprocess.Popen[bytes] | None = None, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"service exited with {process.returncode} before answering")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def wait_for_ready_status(
    url: str, wanted: str, *, timeout: float = 30, meanwhile: Callable[[], None] | None = None
) -> dict[str, object]:
    """/ready's body once its status is `wanted`; `meanwhile` runs between polls
    (a drill checks its load there)."""
    deadline = time.monotonic() + timeout
    body: dict[str, object] = {}
    while time.monotonic() < deadline:
        if meanwhile is not None:
            meanwhile()
        body = httpx.get(f"{url}/ready", timeout=5).json()
        if body["status"] == wanted:
            return body
        time.sleep(0.1)
    raise AssertionError(f"/ready never said {wanted!r} within {timeout}s: {body}")
