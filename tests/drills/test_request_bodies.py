"""Oversized, malformed and deeply nested bodies are rejected cleanly.

Cleanly: a 4xx status, a JSON error body with a stable code and the request's
ID, no stack trace, and no paid upstream call. Sent concurrently with good
searches, which must keep succeeding.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from infra.standins.app import StandinState
from jobsearch.middleware import BODY_TOO_LARGE_MESSAGE, MAX_BODY_BYTES
from tests.drills.conftest import SharedService

LIMIT = MAX_BODY_BYTES
GOOD = b'{"jobTitle": "python developer"}'


def _deep_array(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _deep_object(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


HUGE_NUMBER = b'{"jobTitle": "a", "salaryMin": ' + b"9" * 5000 + b"}"

BAD_BODIES: list[tuple[str, bytes, int, str]] = [
    ("oversized", b'{"jobTitle": "' + b"x" * (LIMIT + 100) + b'"}', 413, "body_too_large"),
    ("far oversized", b'{"jobTitle": "' + b"x" * (1024 * 1024) + b'"}', 413, "body_too_large"),
    ("deep array over the limit", _deep_array(9000), 413, "body_too_large"),
    ("deep array", _deep_array(3000), 400, "bad_request"),
    ("deep object", _deep_object(2000), 400, "bad_request"),
    ("not json", b"{not json", 422, "validation_error"),
    ("truncated", b'{"jobTitle": "dev"', 422, "validation_error"),
    ("invalid utf-8", b'{"jobTitle": "\xff\xfe"}', 400, "bad_request"),
    ("empty", b"", 422, "validation_error"),
    ("array", b"[]", 422, "validation_error"),
    ("string", b'"python"', 422, "validation_error"),
    ("null", b"null", 422, "validation_error"),
    ("number too long", HUGE_NUMBER, 400, "bad_request"),
    ("infinite salary", b'{"jobTitle": "a", "salaryMin": 1e999}', 422, "validation_error"),
    ("title too long", b'{"jobTitle": "' + b"x" * 500 + b'"}', 422, "validation_error"),
    ("title wrong type", b'{"jobTitle": {"$ne": null}}', 422, "validation_error"),
]


def assert_clean_rejection(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    if status == 413:  # one answer, whether the length was declared or counted on arrival
        assert error["message"] == BODY_TOO_LARGE_MESSAGE
    assert error["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    assert 'File "' not in response.text


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [pytest.param(body, status, code, id=name) for name, body, status, code in BAD_BODIES],
)
def test_bad_body_is_rejected_cleanly(
    shared: SharedService, body: bytes, status: int, code: str
) -> None:
    response = httpx.post(
        f"{shared.url}/api/jobs/jsearch",
        content=body,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert_clean_rejection(response, status, code)
    assert shared.fakes.jsearch.calls == 0


def test_bad_bodies_under_concurrent_load_leave_good_searches_alone(
    shared: SharedService,
) -> None:
    good_body = b'{"jobTitle": "concurrent drill %d"}' % id(shared)

    async def main() -> tuple[list[httpx.Response], list[httpx.Response]]:
        async with httpx.AsyncClient(base_url=shared.url, timeout=30) as client:

            async def post(body: bytes) -> httpx.Response:
                return await client.post(
                    "/api/jobs/jsearch", content=body, headers={"content-type": "application/json"}
                )

            bad = [post(body) for _, body, _, _ in BAD_BODIES for _ in range(3)]
            good = [post(good_body) for _ in range(24)]
            answers = await asyncio.gather(*bad, *good)
            return list(answers[: len(bad)]), list(answers[len(bad) :])

    bad, good = asyncio.run(main())
    expected = [(status, code) for _, _, status, code in BAD_BODIES for _ in range(3)]
    for response, (status, code) in zip(bad, expected, strict=True):
        assert_clean_rejection(response, status, code)
    assert [response.status_code for response in good] == [200] * len(good)
    # Identical good searches share one upstream call; no bad body made one.
    assert shared.fakes.jsearch.calls == 1


def _chunks(body: bytes, size: int = 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_chunked_oversized_body_is_413(shared: SharedService) -> None:
    valid_but_large = b'{"jobTitle": "dev", "industry": "' + b"x" * (LIMIT * 2) + b'"}'
    response = httpx.post(
        f"{shared.url}/api/jobs/jsearch",
        content=_chunks(valid_but_large),
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert "content-length" not in response.request.headers  # really chunked
    assert_clean_rejection(response, 413, "body_too_large")
    assert shared.fakes.jsearch.calls == 0


def test_chunked_body_under_the_limit_is_served(shared: SharedService) -> None:
    async def body() -> AsyncIterator[bytes]:
        for chunk in _chunks(GOOD, 8):
            yield chunk

    async def main() -> httpx.Response:
        async with httpx.AsyncClient(timeout=30) as client:
            return await client.post(
                f"{shared.url}/api/jobs/jsearch",
                content=body(),
                headers={"content-type": "application/json"},
            )

    response = asyncio.run(main())
    assert response.status_code == 200, response.text[:300]
    assert response.json()["total"] > 0


def test_a_nul_in_a_search_does_not_switch_the_shared_cache_off(
    service_url: str, fakes: StandinState
) -> None:
    odd = httpx.post(f"{service_url}/api/jobs/jsearch", json={"jobTitle": "dev\u0000ops"})
    assert odd.status_code in (200, 422), odd.text[:300]
    after = httpx.post(f"{service_url}/api/jobs/jsearch", json={"jobTitle": "plain search"})
    assert after.status_code == 200
    assert after.headers["x-cache"] == "miss"  # looked up in, and stored to, Postgres
