"""Every upstream fault, for both sources, under concurrent load.

Each fault the fake upstreams can play is both upstreams' only answer while 16
distinct searches arrive at once on each source; then all faults are mixed at
random into one burst on both sources. Every answer must be one of the statuses the API
documents, with the JSON error body of that fault (or of the circuit breaker,
which may open mid-burst), and never a 500.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter

import pytest

from harness.load import Call, Outcome, send_all
from infra.standins.app import SourceBehaviour, StandinState
from tests.conftest import ServiceRunner

SOURCES = ("jsearch", "theirstack")
CONCURRENT = 16
TIMEOUT_SECONDS = 0.5

# Fault -> the one answer it may give (the breaker's own answer is allowed on top).
FAULTS: dict[str, tuple[int, str]] = {
    "slow": (504, "upstream_timeout"),
    "trickle": (504, "upstream_timeout"),
    "server_error": (502, "upstream_error"),
    "malformed_json": (502, "upstream_malformed_response"),
    "wrong_shape": (502, "upstream_malformed_response"),
    "forbidden": (502, "upstream_rejected"),
    "quota": (503, "upstream_quota_exhausted"),
    "rate_limited": (503, "upstream_rate_limited"),
}
CIRCUIT_OPEN = (503, "upstream_unavailable")
DOCUMENTED_ERRORS = {*FAULTS.values(), CIRCUIT_OPEN}


def _burst(url: str, per_source: int) -> list[Outcome]:
    """`per_source` distinct searches on each source, all at once."""
    run = uuid.uuid4().hex[:8]
    calls = [
        Call("POST", f"/api/jobs/{source}", {"jobTitle": f"fault drill {run} {n}"})
        for n in range(per_source)
        for source in SOURCES
    ]
    return asyncio.run(send_all(url, calls, concurrency=len(calls), request_timeout=30))


def assert_defined_error(outcome: Outcome, allowed: set[tuple[int, str]]) -> None:
    assert outcome.failure is None, outcome.failure
    assert outcome.status != 500
    assert outcome.json_body, f"{outcome.status} without a JSON body"
    assert (outcome.status, outcome.error_code) in allowed, (outcome.status, outcome.error_code)


def _behaviour(fakes: StandinState, source: str) -> SourceBehaviour:
    found: SourceBehaviour = getattr(fakes, source)
    return found


@pytest.mark.parametrize("fault", list(FAULTS))
def test_each_fault_under_concurrent_load_gets_its_defined_error(
    run_service: ServiceRunner, fakes: StandinState, fault: str
) -> None:
    for source in SOURCES:
        upstream = _behaviour(fakes, source)
        upstream.default = fault
        upstream.delay_seconds = 4 * TIMEOUT_SECONDS
        upstream.retry_after = 1
    with run_service(upstream_timeout_seconds=TIMEOUT_SECONDS) as url:
        outcomes = _burst(url, CONCURRENT)
    for outcome in outcomes:
        assert_defined_error(outcome, {FAULTS[fault], CIRCUIT_OPEN})
    for source in SOURCES:
        # The searches that reached the upstream before its breaker opened got the fault.
        got_fault = [
            outcome
            for outcome in outcomes
            if outcome.call.path.endswith(source) and outcome.error_code == FAULTS[fault][1]
        ]
        assert got_fault, f"{source}: no answer carried {FAULTS[fault]}"
        assert _behaviour(fakes, source).calls >= 1


def test_all_faults_mixed_on_both_sources_never_give_a_500(
    run_service: ServiceRunner, fakes: StandinState
) -> None:
    rng = random.Random(6)
    modes = [*FAULTS, "ok", "ok", "empty"]
    for source in SOURCES:
        upstream = _behaviour(fakes, source)
        upstream.script = [rng.choice(modes) for _ in range(200)]
        upstream.delay_seconds = 4 * TIMEOUT_SECONDS
        upstream.retry_after = 1

    async def both() -> list[Outcome]:
        run = uuid.uuid4().hex[:8]
        calls = [
            Call("POST", f"/api/jobs/{source}", {"jobTitle": f"mixed {run} {n}"})
            for n in range(48)
            for source in SOURCES
        ]
        return await send_all(url, calls, concurrency=2 * CONCURRENT, request_timeout=30)

    with run_service(upstream_timeout_seconds=TIMEOUT_SECONDS) as url:
        outcomes = asyncio.run(both())
    answered = Counter((outcome.status, outcome.error_code) for outcome in outcomes)
    for outcome in outcomes:
        if outcome.status == 200:
            continue
        assert_defined_error(outcome, DOCUMENTED_ERRORS)
    assert answered[(200, None)] >= 1, answered  # some searches got through the faults
    assert len(answered) >= 4, answered  # and several different faults were met
