"""Errors: the body every error is answered with, and one message per framework error."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from harness.servers import serve_in_thread
from jobsearch.errors import BAD_JSON_MESSAGE, HTTP_ERRORS, ErrorResponse
from jobsearch.main import create_app
from jobsearch.settings import settings_from


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with (
        serve_in_thread(create_app(settings_from({"APP_ENV": "development"}))) as url,
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        yield http


@pytest.mark.parametrize(
    ("method", "path", "status"), [("GET", "/no-such-endpoint", 404), ("DELETE", "/health", 405)]
)
def test_a_framework_error_is_an_error_body_with_its_code(
    client: httpx.Client, method: str, path: str, status: int
) -> None:
    response = client.request(method, path)

    assert response.status_code == status
    body = ErrorResponse.model_validate(response.json())
    assert (body.error.code, body.error.message) == HTTP_ERRORS[status]
    assert body.error.request_id == response.headers["X-Request-ID"]


def test_the_openapi_document_states_the_message_a_bad_body_gets(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    responses = spec["paths"]["/api/jobs/jsearch"]["post"]["responses"]

    assert responses["400"]["description"] == BAD_JSON_MESSAGE == HTTP_ERRORS[400][1]
    assert responses["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorResponse"
    }
