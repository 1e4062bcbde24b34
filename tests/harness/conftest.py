"""A small app on a real socket that answers the way the load generators must tell apart."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from harness.servers import serve_in_thread


async def _cached(request: Request) -> Response:
    return JSONResponse({"jobs": []}, headers={"X-Cache": "HIT"})


async def _json_error(request: Request) -> Response:
    return JSONResponse({"error": {"code": "upstream_unreachable"}}, status_code=502)


async def _text_error(request: Request) -> Response:
    return PlainTextResponse("boom", status_code=500)


async def _echo(request: Request) -> Response:
    return JSONResponse(await request.json(), headers={"X-Cache": "MISS"})


@dataclass
class InFlight:
    """How many /slow requests the app was serving at once, at the most."""

    now: int = 0
    most: int = 0

    def reset(self) -> None:
        self.now = self.most = 0


IN_FLIGHT = InFlight()


async def _slow(request: Request) -> Response:
    IN_FLIGHT.now += 1
    IN_FLIGHT.most = max(IN_FLIGHT.most, IN_FLIGHT.now)
    await asyncio.sleep(0.05)
    IN_FLIGHT.now -= 1
    return JSONResponse({})


def build_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/cached", _cached),
            Route("/json-error", _json_error),
            Route("/text-error", _text_error),
            Route("/echo", _echo, methods=["POST"]),
            Route("/slow", _slow),
        ]
    )


@pytest.fixture(scope="module")
def app_url() -> Iterator[str]:
    with serve_in_thread(build_app(), lifespan="off") as url:
        yield url
