"""Hundreds of clients that trickle their headers or bodies, through the real proxy.

Each is cut off within the proxy's read timeouts (infra/topology.py); while they
hang on, /health through the same proxy still answers, and the proxy stays under
its memory limit.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
import pytest

from infra.topology import (
    PROXY_MEMORY_MB,
    PROXY_READ_BODY_TIMEOUT,
    PROXY_READ_HEADER_TIMEOUT,
)
from tests.support.local_topology import TestTopology

pytestmark = pytest.mark.docker

TRICKLERS = 150  # of each kind
DRIP_SECONDS = 0.5
MARGIN_SECONDS = 4.0


def _seconds(duration: str) -> float:
    assert duration.endswith("s"), duration
    return float(duration[:-1])


class Trickler:
    """One connection that sends its request a byte at a time, forever."""

    def __init__(self, address: tuple[str, int], head: bytes, body_dribble: bool) -> None:
        self.sock = socket.create_connection(address, timeout=5)
        self.sock.setblocking(False)
        self.opened = time.monotonic()
        self.closed_after: float | None = None
        self.pending = head
        self.body_dribble = body_dribble

    def drip(self) -> None:
        if self.closed_after is not None:
            return
        try:
            data = self.sock.recv(4096)
            # An answer (408/400) or an orderly close: the proxy gave up on us.
            if data or data == b"":
                self._closed()
                return
        except BlockingIOError:
            pass
        except OSError:
            self._closed()
            return
        chunk = self.pending[:1] if self.pending else (b"a" if self.body_dribble else b"X")
        self.pending = self.pending[1:]
        try:
            self.sock.send(chunk)
        except OSError:
            self._closed()

    def _closed(self) -> None:
        self.closed_after = time.monotonic() - self.opened
        with contextlib.suppress(OSError):
            self.sock.close()


def test_slow_clients_are_cut_off_and_health_still_answers(topology: TestTopology) -> None:
    url = urlsplit(topology.url)
    address = (url.hostname or "127.0.0.1", int(url.port or 80))
    header_head = b"GET /health HTTP/1.1\r\nHost: api\r\nX-Slow: "
    body_head = (
        b"POST /api/jobs/jsearch HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
        b"Content-Length: 4000\r\n\r\n"
    )
    tricklers = [Trickler(address, header_head, body_dribble=False) for _ in range(TRICKLERS)]
    tricklers += [Trickler(address, body_head, body_dribble=True) for _ in range(TRICKLERS)]
    [proxy] = topology.runner.containers("proxy")
    health: list[float] = []
    memory: list[int] = []
    errors: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        with httpx.Client(timeout=3) as client:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    response = client.get(f"{topology.url}/health")
                except httpx.HTTPError as error:
                    errors.append(repr(error))
                    continue
                if response.status_code != 200:
                    errors.append(f"HTTP {response.status_code}")
                health.append(time.monotonic() - started)
                stats = cast(dict[str, Any], proxy.stats(stream=False))
                memory.append(int(stats["memory_stats"]["usage"]))
                time.sleep(0.2)

    watcher = threading.Thread(target=watch)
    watcher.start()
    deadline = time.monotonic() + _seconds(PROXY_READ_BODY_TIMEOUT) + 3 * MARGIN_SECONDS
    try:
        while time.monotonic() < deadline and any(t.closed_after is None for t in tricklers):
            for trickler in tricklers:
                trickler.drip()
            time.sleep(DRIP_SECONDS)
    finally:
        stop.set()
        watcher.join(timeout=10)
        for trickler in tricklers:
            with contextlib.suppress(OSError):
                trickler.sock.close()

    header_closes = [t.closed_after for t in tricklers[:TRICKLERS]]
    body_closes = [t.closed_after for t in tricklers[TRICKLERS:]]
    print(
        f"slow clients: {2 * TRICKLERS} connections; headers cut off after at most "
        f"{max(c or 0 for c in header_closes):.1f}s, bodies after at most "
        f"{max(c or 0 for c in body_closes):.1f}s; /health answered {len(health)} times, "
        f"slowest {max(health):.2f}s; proxy memory at most {max(memory) / 2**20:.0f} MiB"
    )
    assert None not in header_closes, "a header trickler was never cut off"
    assert None not in body_closes, "a body trickler was never cut off"
    assert max(c or 0 for c in header_closes) <= (
        _seconds(PROXY_READ_HEADER_TIMEOUT) + MARGIN_SECONDS
    )
    assert max(c or 0 for c in body_closes) <= _seconds(PROXY_READ_BODY_TIMEOUT) + MARGIN_SECONDS
    assert errors == []
    assert len(health) >= 3, "health was polled while the slow clients hung on"
    assert max(health) < 2.0
    assert max(memory) < PROXY_MEMORY_MB * 2**20
