"""Free ports, and ASGI apps on real sockets in a background thread (processes: processes.py)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
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
