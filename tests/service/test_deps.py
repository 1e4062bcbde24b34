"""Who may search: the frontend key (FRONTEND_API_KEYS), and whom the rate limit counts."""

from __future__ import annotations

import httpx
import pytest

from infra.standins.app import StandinState
from tests.conftest import ServiceRunner

OLD_KEY = "frontend-key-old-0123456789abcdef"
NEW_KEY = "frontend-key-new-fedcba9876543210"
SEARCH = {"jobTitle": "python developer"}


def _search(url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{url}/api/jobs/jsearch", json=SEARCH, headers=headers or {})


def test_without_frontend_keys_the_api_is_open_and_ready_says_so(
    run_service: ServiceRunner, fakes: StandinState
) -> None:
    with run_service() as url:
        answer = _search(url)
        ready = httpx.get(f"{url}/ready").json()
    assert answer.status_code == 200
    assert ready["checks"]["auth"] == {"status": "open"}


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer wrong-key-0123456789abcdef",
        f"Bearer {OLD_KEY}x",
        f"Bearer {OLD_KEY[:-1]}",
        f"Basic {OLD_KEY}",
        OLD_KEY,
    ],
)
def test_a_missing_or_wrong_key_is_401_unauthorized(
    run_service: ServiceRunner, fakes: StandinState, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    with run_service(frontend_api_keys=OLD_KEY) as url:
        answer = _search(url, headers)
    assert answer.status_code == 401
    error = answer.json()["error"]
    assert error["code"] == "unauthorized"
    assert error["request_id"] == answer.headers["x-request-id"]
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert OLD_KEY not in answer.text
    assert fakes.jsearch.calls == 0, "no paid call for an unauthorized search"


def test_either_key_of_a_rotation_is_accepted_and_ready_says_a_key_is_required(
    run_service: ServiceRunner, fakes: StandinState
) -> None:
    with run_service(frontend_api_keys=f"{OLD_KEY}, {NEW_KEY}") as url:
        with_old = _search(url, {"Authorization": f"Bearer {OLD_KEY}"})
        with_new = _search(url, {"Authorization": f"bearer {NEW_KEY}"})
        both = _search(url, {"Authorization": f"Bearer {OLD_KEY},{NEW_KEY}"})
        ready = httpx.get(f"{url}/ready")
        health = httpx.get(f"{url}/health")
    assert with_old.status_code == 200
    assert with_new.status_code == 200
    assert both.status_code == 401, "the list is the server's; a client sends one key"
    assert ready.status_code == 200, "/ready and /health need no key"
    assert health.status_code == 200
    assert ready.json()["checks"]["auth"] == {"status": "required"}


def test_an_unauthorized_search_is_refused_before_its_body_is_validated(
    run_service: ServiceRunner, fakes: StandinState
) -> None:
    with run_service(frontend_api_keys=OLD_KEY) as url:
        answer = httpx.post(f"{url}/api/jobs/theirstack", json={"jobTitle": ""})
    assert answer.status_code == 401


def _statuses(url: str, count: int, headers: dict[str, str]) -> list[int]:
    return [_search(url, headers).status_code for _ in range(count)]


def test_with_a_valid_key_the_limit_counts_each_end_user_on_its_own(
    run_service: ServiceRunner, fakes: StandinState
) -> None:
    key = {"Authorization": f"Bearer {OLD_KEY}"}
    with run_service(frontend_api_keys=OLD_KEY, rate_limit="2/minute") as url:
        alice = _statuses(url, 3, {**key, "X-End-User": "203.0.113.7"})
        bob = _statuses(url, 2, {**key, "X-End-User": "session:9f8e7d6c"})
        # No X-End-User: the caller's own address (the frontend's server) is counted.
        server = _statuses(url, 3, key)
    assert alice == [200, 200, 429]
    assert bob == [200, 200]
    assert server == [200, 200, 429]


def test_without_a_valid_key_x_end_user_is_ignored(
    run_service: ServiceRunner, fakes: StandinState
) -> None:
    # An open API: anyone could name any user, so the address is what counts.
    with run_service(rate_limit="2/minute") as url:
        statuses = [_search(url, {"X-End-User": f"user-{index}"}).status_code for index in range(3)]
    assert statuses == [200, 200, 429]


@pytest.mark.parametrize("end_user", ["", "x" * 129, "caf\u00e9", "tab\there"])
def test_a_bad_x_end_user_is_422_naming_the_header(
    run_service: ServiceRunner, fakes: StandinState, end_user: str
) -> None:
    # Bytes: sent as they are (UTF-8 included), as any client may.
    headers = [
        (b"Authorization", f"Bearer {OLD_KEY}".encode()),
        (b"X-End-User", end_user.encode()),
    ]
    with run_service(frontend_api_keys=OLD_KEY) as url:
        answer = httpx.post(f"{url}/api/jobs/jsearch", json=SEARCH, headers=headers)
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "validation_error"
    assert "X-End-User" in error["message"]
    assert error["fields"][0]["field"] == "X-End-User"
    assert fakes.jsearch.calls == 0
