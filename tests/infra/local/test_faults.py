"""`ops local fault` on a running instance: each fault changes what a search through the
proxy (or /ready) answers, and `healthy` / `start` undo it.

Searches differ at each step (the cache would answer a repeated one), and the faults that
count against a circuit are spread over both sources so that none opens (5 failures in a
row: 3 attempts of a 500 or a refused connection, 1 of a malformed answer)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest

from infra.ops import fault
from infra.ops.cli import main
from tests.support.local_topology import TestTopology

pytestmark = pytest.mark.docker


def _fault(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(["local", "--env", "test", "fault", *argv, "--json"])
    captured = capsys.readouterr()
    assert exited.value.code == 0, captured.err
    report: dict[str, Any] = json.loads(captured.out)
    return report


def _search(topology: TestTopology, source: str) -> httpx.Response:
    # A new title each time: never a cache hit.
    title = f"engineer {uuid.uuid4().hex[:8]}"
    return httpx.post(f"{topology.url}/api/jobs/{source}", json={"jobTitle": title}, timeout=90)


def _error_code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


def _ready_until(topology: TestTopology, wanted: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        ready: dict[str, Any] = httpx.get(f"{topology.url}/ready", timeout=10).json()
        if ready["status"] == wanted or time.monotonic() > deadline:
            return ready
        time.sleep(0.5)


def test_source_faults_change_what_searches_answer(
    topology: TestTopology, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    assert _search(topology, "jsearch").status_code == 200
    quick = time.monotonic() - started

    slow = _fault(capsys, "jsearch", "slow")
    assert slow["alert"] is None
    started = time.monotonic()
    assert _search(topology, "jsearch").status_code == 200
    assert time.monotonic() - started >= fault.SLOW_SECONDS > quick

    errors = _fault(capsys, "jsearch", "errors")
    assert errors["alert"] == "JobSearchApiDegraded"
    assert errors["runbook"] == "runbooks/JobSearchApiDegraded.md"
    response = _search(topology, "jsearch")
    assert response.status_code == 502
    assert _error_code(response) == "upstream_error"

    _fault(capsys, "jsearch", "rate-limited")
    response = _search(topology, "jsearch")
    assert response.status_code == 503
    assert _error_code(response) == "upstream_rate_limited"
    assert int(response.headers["Retry-After"]) > 0

    quota = _fault(capsys, "jsearch", "quota-low")
    assert quota["alert"] == "JobSearchUpstreamQuotaLow"
    # Each worker reports what it last saw: search until the one answering /ready has.
    for _ in range(40):
        assert _search(topology, "jsearch").status_code == 200
        ready = httpx.get(f"{topology.url}/ready", timeout=10).json()
        if ready["checks"]["quota"]["status"] == "low":
            break
    assert ready["checks"]["quota"]["status"] == "low"
    assert ready["checks"]["sources"]["jsearch"]["quota_remaining"] == fault.LOW_QUOTA

    _fault(capsys, "theirstack", "malformed")
    response = _search(topology, "theirstack")
    assert response.status_code == 502
    assert _error_code(response) == "upstream_malformed_response"

    unreachable = _fault(capsys, "theirstack", "unreachable")
    assert unreachable["undo"] == "ops local --env test fault theirstack healthy"
    assert not topology.runner.containers("standin-theirstack")
    response = _search(topology, "theirstack")
    assert response.status_code == 502
    assert _error_code(response) == "upstream_unreachable"

    for source in ("jsearch", "theirstack"):
        _fault(capsys, source, "healthy")
        assert _search(topology, source).status_code == 200


@pytest.mark.parametrize(
    ("store", "check", "down"),
    [("postgres", "database", "down"), ("redis", "rate_limit_store", "down")],
)
def test_a_stopped_datastore_degrades_ready_until_started(
    topology: TestTopology, capsys: pytest.CaptureFixture[str], store: str, check: str, down: str
) -> None:
    assert _ready_until(topology, "ready")["status"] == "ready"
    stopped = _fault(capsys, store, "stop")
    assert stopped["alert"] == "JobSearchApiDegraded"
    assert stopped["undo"] == f"ops local --env test fault {store} start"
    try:
        degraded = _ready_until(topology, "degraded")
        assert degraded["status"] == "degraded"
        assert degraded["checks"][check]["status"] == down
        assert _search(topology, "jsearch").status_code == 200
    finally:
        started = _fault(capsys, store, "start")
    assert started["alert"] is None
    ready = _ready_until(topology, "ready")
    assert ready["status"] == "ready"
    assert ready["checks"][check]["status"] == "up"
