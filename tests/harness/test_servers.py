"""Free ports, refused ports, and an app served on a real socket in a thread."""

from __future__ import annotations

import socket

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from harness.servers import closed_port, free_port, serve_in_thread, wait_for_ready_status


def test_a_free_port_can_be_bound_and_a_closed_one_refuses() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", free_port()))
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{closed_port()}/", timeout=2)


def test_a_served_app_answers_until_the_block_ends(app_url: str) -> None:
    assert httpx.get(f"{app_url}/cached", timeout=5).headers["x-cache"] == "HIT"


def test_the_thread_stops_serving_when_the_block_ends() -> None:
    with serve_in_thread(Starlette(), lifespan="off") as url:
        assert httpx.get(f"{url}/", timeout=5).status_code == 404
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/", timeout=2)


def _ready_app(statuses: list[str]) -> Starlette:
    async def ready(_: object) -> JSONResponse:
        return JSONResponse({"status": statuses.pop(0) if len(statuses) > 1 else statuses[0]})

    return Starlette(routes=[Route("/ready", ready)])


def test_waiting_for_a_ready_status_returns_the_body_once_it_says_so() -> None:
    polled: list[str] = []
    with serve_in_thread(_ready_app(["degraded", "degraded", "ready"]), lifespan="off") as url:
        body = wait_for_ready_status(url, "ready", timeout=10, meanwhile=lambda: polled.append("x"))
    assert body == {"status": "ready"}
    assert len(polled) == 3


def test_waiting_for_a_status_that_never_comes_names_the_last_body() -> None:
    with (
        serve_in_thread(_ready_app(["degraded"]), lifespan="off") as url,
        pytest.raises(AssertionError, match=r"never said 'ready'.*'degraded'"),
    ):
        wait_for_ready_status(url, "ready", timeout=0.5)
