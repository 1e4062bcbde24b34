"""What every upstream client shares (upstreams/base.py), against the fake upstreams
over real sockets: here, that an answer nobody planned for never wedges a source."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from infra.standins.app import JSEARCH_KEY, StandinState
from jobsearch.breaker import CircuitBreaker, CircuitState
from jobsearch.errors import UpstreamError
from jobsearch.models import JobSearchRequest
from jobsearch.upstreams.jsearch import JSearchClient

TIMEOUT = 1.0
RESET_AFTER = 0.2
SEARCH = JobSearchRequest.model_validate({"jobTitle": "half open"})


def jsearch_client(fakes_url: str) -> JSearchClient:
    http = httpx.AsyncClient(
        base_url=fakes_url,
        headers=JSearchClient.auth_headers(JSEARCH_KEY, fakes_url),
        timeout=TIMEOUT,
    )
    breaker = CircuitBreaker(failure_threshold=1, reset_after_seconds=RESET_AFTER)
    return JSearchClient(http, timeout_seconds=TIMEOUT, breaker=breaker)


async def outcome(client: JSearchClient) -> str:
    """The error code a search ends with, "ok", or the name of an unplanned exception."""
    try:
        await client.search(SEARCH)
    except UpstreamError as error:
        return error.code
    except Exception as error:  # what the API would answer with a 500
        return type(error).__name__
    return "ok"


@pytest.mark.parametrize(
    ("fault", "trial_outcome"),
    [
        # Unreadable data: a failure of the upstream, which the breaker counts.
        ("bad_gzip", "upstream_malformed_response"),
        # The answer itself is good; only the quota header is odd.
        ("odd_quota_header", "ok"),
    ],
)
def test_an_unexpected_answer_to_a_half_open_trial_does_not_wedge_the_source(
    fakes: StandinState, fakes_url: str, fault: str, trial_outcome: str
) -> None:
    async def scenario() -> list[str | CircuitState]:
        client = jsearch_client(fakes_url)
        try:
            seen: list[str | CircuitState] = [await outcome(client)]  # 500s open the circuit
            assert client.breaker.state is CircuitState.OPEN
            await asyncio.sleep(RESET_AFTER + 0.05)
            state: CircuitState = client.breaker.state  # moved on by the clock alone
            assert state is CircuitState.HALF_OPEN
            seen.append(await outcome(client))  # the trial meets the fault
            await asyncio.sleep(RESET_AFTER + 0.05)
            seen.append(await outcome(client))  # the upstream is healthy again
            return [*seen, client.breaker.state]
        finally:
            await client.aclose()

    fakes.jsearch.script = ["server_error"] * 3 + [fault]
    assert asyncio.run(scenario()) == ["upstream_error", trial_outcome, "ok", CircuitState.CLOSED]
    assert fakes.jsearch.calls == 5
