"""Every upstream failure, for both sources: the status, the error code and bounded latency.

UPSTREAM_TIMEOUT_SECONDS is 1 in these tests, so no search may take longer than 3 s
(plus a little for the machine); the fakes are real HTTP servers on 127.0.0.1.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from harness.servers import closed_port
from infra.standins.app import SourceBehaviour, StandinState
from tests.conftest import ServiceRunner

SOURCES = ["jsearch", "theirstack"]
TIMEOUT = 1.0
BOUND = 3 * TIMEOUT + 0.75


def behaviour(fakes: StandinState, source: str) -> SourceBehaviour:
    found: SourceBehaviour = getattr(fakes, source)
    return found


def search(url: str, source: str, title: str = "python developer") -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.post(f"{url}/api/jobs/{source}", json={"jobTitle": title}, timeout=30)
    return response, time.monotonic() - started


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(
    ("mode", "status", "code", "calls"),
    [
        ("slow", 504, "upstream_timeout", 1),
        ("trickle", 504, "upstream_timeout", 1),
        ("server_error", 502, "upstream_error", 3),
        ("malformed_json", 502, "upstream_malformed_response", 1),
        ("wrong_shape", 502, "upstream_malformed_response", 1),
        ("bad_gzip", 502, "upstream_malformed_response", 1),
        ("forbidden", 502, "upstream_rejected", 1),
        ("quota", 503, "upstream_quota_exhausted", 1),
        ("rate_limited", 503, "upstream_rate_limited", 3),
    ],
)
def test_failure_gives_a_defined_error_within_the_bound(
    service_url: str,
    fakes: StandinState,
    source: str,
    mode: str,
    status: int,
    code: str,
    calls: int,
) -> None:
    upstream = behaviour(fakes, source)
    upstream.default = mode
    upstream.delay_seconds = 3.0
    response, elapsed = search(service_url, source)
    assert_error(response, status, code)
    assert elapsed < BOUND
    assert upstream.calls == calls
    if status == 503:
        assert int(response.headers["retry-after"]) >= 1


@pytest.fixture
def refused_service(run_service: ServiceRunner) -> Iterator[str]:
    dead = f"http://127.0.0.1:{closed_port()}"
    with run_service(jsearch_base_url=dead, theirstack_base_url=dead) as url:
        yield url


@pytest.mark.parametrize("source", SOURCES)
def test_connection_refused_is_retried_then_502(refused_service: str, source: str) -> None:
    response, elapsed = search(refused_service, source)
    assert_error(response, 502, "upstream_unreachable")
    assert elapsed < BOUND


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("first", ["server_error", "rate_limited"])
def test_a_passing_failure_is_retried_and_the_search_succeeds(
    service_url: str, fakes: StandinState, source: str, first: str
) -> None:
    upstream = behaviour(fakes, source)
    upstream.script = [first]
    upstream.retry_after = 1
    response, elapsed = search(service_url, source)
    assert response.status_code == 200
    assert upstream.calls == 2
    if first == "rate_limited":
        assert elapsed >= 1.0, "Retry-After was not honoured"


@pytest.mark.parametrize("source", SOURCES)
def test_retry_after_beyond_the_budget_is_passed_to_the_client(
    service_url: str, fakes: StandinState, source: str
) -> None:
    upstream = behaviour(fakes, source)
    upstream.default = "rate_limited"
    upstream.retry_after = 120
    response, elapsed = search(service_url, source)
    assert_error(response, 503, "upstream_rate_limited")
    assert response.headers["retry-after"] == "120"
    assert upstream.calls == 1
    assert elapsed < 1.0


@pytest.mark.parametrize("source", SOURCES)
def test_circuit_opens_and_a_dead_upstream_then_costs_milliseconds(
    service_url: str, fakes: StandinState, source: str
) -> None:
    upstream = behaviour(fakes, source)
    upstream.default = "server_error"
    for attempt in range(2):
        response, _ = search(service_url, source, title=f"breaker {attempt}")
        assert response.status_code == 502
    calls_before = upstream.calls
    response, elapsed = search(service_url, source, title="breaker open")
    assert_error(response, 503, "upstream_unavailable")
    assert int(response.headers["retry-after"]) >= 1
    assert upstream.calls == calls_before
    assert elapsed < 0.25
    ready = httpx.get(f"{service_url}/ready").json()
    assert ready["status"] == "degraded"
    assert ready["checks"]["sources"][source]["circuit"] == "open"


def test_one_source_failing_does_not_affect_the_other(
    service_url: str, fakes: StandinState
) -> None:
    fakes.jsearch.default = "server_error"
    failing, _ = search(service_url, "jsearch")
    working, _ = search(service_url, "theirstack")
    assert failing.status_code == 502
    assert working.status_code == 200
