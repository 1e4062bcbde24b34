"""A batch of calls keeps every outcome, in call order, and tells failures apart."""

from __future__ import annotations

import asyncio

import pytest

from harness.load import Call, LoadError, Outcome, require_all_ok, run_calls, send_all
from harness.servers import closed_port
from tests.harness.conftest import IN_FLIGHT


def test_each_outcome_records_the_status_the_cache_and_the_error_code(app_url: str) -> None:
    calls = [
        Call("GET", "/cached"),
        Call("GET", "/json-error"),
        Call("GET", "/text-error"),
        Call("POST", "/echo", {"jobTitle": "nurse"}),
    ]
    outcomes = asyncio.run(send_all(app_url, calls, concurrency=2))
    assert [outcome.call for outcome in outcomes] == calls
    cached, json_error, text_error, echoed = outcomes
    assert (cached.status, cached.cache, cached.error_code) == (200, "HIT", None)
    assert (json_error.status, json_error.error_code, json_error.json_body) == (
        502,
        "upstream_unreachable",
        True,
    )
    assert (text_error.status, text_error.error_code, text_error.json_body) == (500, None, False)
    assert (echoed.status, echoed.cache) == (200, "MISS")
    assert all(outcome.failure is None and outcome.seconds > 0 for outcome in outcomes)


def test_a_refused_connection_is_an_outcome_without_a_status() -> None:
    outcomes, seconds = run_calls(
        f"http://127.0.0.1:{closed_port()}", [Call("GET", "/health")], concurrency=1, timeout=5
    )
    [refused] = outcomes
    assert refused.status is None
    assert refused.failure is not None
    assert refused.failure.startswith("ConnectError")
    assert not refused.unanswered  # refused is not "closed before any answer": no resend
    assert seconds >= refused.seconds


def test_no_more_than_the_concurrency_is_in_flight(app_url: str) -> None:
    IN_FLIGHT.reset()
    outcomes, _ = run_calls(app_url, [Call("GET", "/slow")] * 12, concurrency=3)
    assert [outcome.status for outcome in outcomes] == [200] * 12
    assert IN_FLIGHT.most == 3


def test_require_all_ok_names_how_many_failed_and_the_first_failure() -> None:
    ok = Outcome(Call("GET", "/health"), 200, 0.01)
    bad = Outcome(Call("GET", "/x"), 502, 0.01, error_code="upstream_timeout")
    require_all_ok("all fine", [ok, ok])
    with pytest.raises(
        LoadError, match=r"cold: 2 of 3 requests failed \(first: 502 upstream_timeout"
    ):
        require_all_ok("cold", [ok, bad, bad])
