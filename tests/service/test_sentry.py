"""Sentry: reports unhandled errors when SENTRY_DSN is set; the client still gets a clean 500."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
import sentry_sdk
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from harness.servers import serve_in_thread
from jobsearch.main import create_app
from jobsearch.settings import Settings

SENTRY_KEY = "fedcba9876543210fedcba9876543210"


@pytest.fixture
def sentry_inbox() -> Iterator[tuple[str, list[bytes]]]:
    received: list[bytes] = []

    async def envelope(request: Request) -> JSONResponse:
        body = await request.body()
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        received.append(body)
        return JSONResponse({"id": "0" * 32})

    app = Starlette(routes=[Route("/api/{project}/envelope/", envelope, methods=["POST"])])
    with serve_in_thread(app, lifespan="off") as url:
        yield url, received
    sentry_sdk.get_client().close()


def test_unhandled_error_is_reported_and_the_client_sees_no_detail(
    sentry_inbox: tuple[str, list[bytes]], make_settings: object
) -> None:
    inbox_url, received = sentry_inbox
    host = inbox_url.removeprefix("http://")
    settings: Settings = make_settings(sentry_dsn=f"http://{SENTRY_KEY}@{host}/42")  # type: ignore[operator]
    app = create_app(settings)

    async def explode() -> None:
        # Built at run time: Sentry sends source lines as context, and this one must not count.
        headers = {"X-RapidAPI-Key": "-".join(("frame", "local", "key"))}
        raise RuntimeError(f"database password is hunter2, {len(headers)} header")

    app.add_api_route("/explode", explode)
    with serve_in_thread(app) as url:
        response = httpx.get(f"{url}/explode")
        sentry_sdk.flush(timeout=5)
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    events = [part for body in received for part in body.split(b"\n") if b"exception" in part]
    assert events, "Sentry received no event"
    assert b"frame-local-key" not in b"".join(received), "frame locals reached Sentry"
    event = json.loads(events[0])
    assert event["exception"]["values"][0]["type"] == "RuntimeError"
    assert event["environment"] == "development"


def test_sentry_stays_off_without_a_dsn() -> None:
    # A fresh process: Sentry's client is global, and the test above turned one on.
    probe = (
        "import sentry_sdk\n"
        "from jobsearch.main import create_app\n"
        "from jobsearch.settings import Settings\n"
        "create_app(Settings.model_validate({}))\n"
        "print(sentry_sdk.get_client().is_active())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip().splitlines()[-1] == "False"
