"""The outermost layer (middleware.py): what a client's request can put into the access log,
how long its body may take, and how many requests a worker takes on at once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from pathlib import Path

import httpx

from harness.processes import run_service_process
from infra.standins.app import StandinState
from tests.conftest import ServiceRunner


def test_a_long_path_is_logged_truncated(tmp_path: Path) -> None:
    log_path = tmp_path / "service.log"
    long_path = "/" + "a" * 20_000
    with run_service_process({"APP_ENV": "development"}, log_path=log_path) as (url, _):
        response = httpx.get(url + long_path, headers={"X-Request-ID": "long-path"})
    assert response.status_code == 404
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    access = next(line for line in lines if line.get("request_id") == "long-path")
    assert access["event"] == "request"
    assert len(access["path"]) <= 256 + 1  # and a mark that it was cut
    assert access["path"].startswith("/aaaa")
    assert len(json.dumps(access)) < 1000


def _trickle_body(url: str, *, seconds_per_byte: float, length: int) -> tuple[bytes, float]:
    """POST a search whose body arrives one byte at a time; what came back, and when."""
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps({"jobTitle": "x" * (length - 16)}).encode()
    assert len(body) == length
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            b"POST /api/jobs/jsearch HTTP/1.1\r\nHost: test\r\n"
            b"Content-Type: application/json\r\n" + f"Content-Length: {length}\r\n\r\n".encode()
        )
        answer = b""
        for byte in body:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break  # cut off
            sock.settimeout(seconds_per_byte)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break  # reset: the server closed, and a byte sent after its answer hit it
            if not chunk:
                break
            answer += chunk
        sock.settimeout(5)
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                answer += chunk
        return answer, time.monotonic() - started


def test_a_trickled_body_is_cut_off_with_408(
    run_service: ServiceRunner, fakes: StandinState
) -> None:
    with run_service(request_body_timeout_seconds=1.0) as url:
        answer, elapsed = _trickle_body(url, seconds_per_byte=0.2, length=40)
        health = httpx.get(f"{url}/health")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"connection: close" in head.lower()
    assert json.loads(body)["error"]["code"] == "request_timeout"
    assert elapsed < 3, "cut off at the deadline, then the connection closed"
    assert fakes.jsearch.calls == 0
    assert health.status_code == 200


def test_a_body_within_the_deadline_is_served(
    run_service: ServiceRunner, fakes: StandinState
) -> None:
    with run_service(request_body_timeout_seconds=2.0) as url:
        answer, _ = _trickle_body(url, seconds_per_byte=0.02, length=40)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]


def test_beyond_the_concurrency_limit_a_request_is_refused_at_once(
    run_service: ServiceRunner, fakes: StandinState
) -> None:
    fakes.jsearch.default = "slow"
    fakes.jsearch.delay_seconds = 0.8  # shorter than the attempt timeout (1 s)

    async def scenario(url: str) -> tuple[list[httpx.Response], httpx.Response, float, int]:
        async with httpx.AsyncClient(timeout=10) as client:
            held = [
                asyncio.create_task(
                    client.post(f"{url}/api/jobs/jsearch", json={"jobTitle": f"held {i}"})
                )
                for i in range(2)
            ]
            await asyncio.sleep(0.3)
            started = time.monotonic()
            refused = await client.post(f"{url}/api/jobs/jsearch", json={"jobTitle": "third"})
            waited = time.monotonic() - started
            health = await client.get(f"{url}/health")
            return list(await asyncio.gather(*held)), refused, waited, health.status_code

    with run_service(max_concurrent_requests=2) as url:
        held, refused, waited, health = asyncio.run(scenario(url))
        after = httpx.post(f"{url}/api/jobs/jsearch", json={"jobTitle": "later"})
    assert [r.status_code for r in held] == [200, 200]
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "overloaded"
    assert refused.headers["retry-after"] == "1"
    assert waited < 0.3, "refused at once, not queued"
    assert health == 200, "/health is never refused"
    assert after.status_code == 200, "the slots are released"
