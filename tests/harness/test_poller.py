"""The /health poller runs on its schedule in a process of its own and reports every poll."""

from __future__ import annotations

import time

import pytest

from harness.load import LoadError
from harness.poller import HealthPoller
from harness.servers import closed_port


def test_the_poller_keeps_a_latency_for_every_poll_that_fell_due(app_url: str) -> None:
    with HealthPoller(f"{app_url}/cached", interval_seconds=0.05, timeout=5) as poller:
        time.sleep(0.5)
    # About ten polls fell due in half a second; a fixed schedule sends each of them.
    assert 5 <= len(poller.latencies_ms) <= 20
    assert poller.failures == []
    assert all(latency >= 0 for latency in poller.latencies_ms)


def test_an_answer_but_200_is_a_failure(app_url: str) -> None:
    with HealthPoller(f"{app_url}/text-error", interval_seconds=0.05, timeout=5) as poller:
        time.sleep(0.3)
    assert poller.failures
    assert set(poller.failures) == {"HTTP 500"}


def test_a_poller_that_cannot_reach_its_url_says_it_did_not_start() -> None:
    with (
        pytest.raises(LoadError, match="did not start"),
        HealthPoller(f"http://127.0.0.1:{closed_port()}/health", timeout=2),
    ):
        pass
