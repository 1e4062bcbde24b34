"""SIGTERM drains: /health turns 503 at once, requests are served for DRAIN_SECONDS, then
uvicorn's graceful shutdown lets the in-flight ones finish; SIGINT stops at once.
The console script as its own process, real sockets; SIGTERM to the main process
alone, as Docker sends it."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from pathlib import Path

import httpx

from harness.processes import run_service_process
from infra.standins.app import JSEARCH_KEY, StandinState
from infra.topology import SERVICE_STOP_GRACE_SECONDS
from jobsearch.server import DRAIN_SECONDS, GRACEFUL_SHUTDOWN_SECONDS

# Outlasts the drain, so the request is still in flight when uvicorn stops accepting.
SLOW_UPSTREAM_SECONDS = DRAIN_SECONDS + 2.0
# The proxy health-checks every 1 s; the supervisor forwards SIGTERM within 0.5 s.
DRAINING_WITHIN_SECONDS = 1.5


def _search(url: str) -> httpx.Response:
    # A title never searched before; there is no cache database either way.
    return httpx.post(
        f"{url}/api/jobs/jsearch",
        json={"jobTitle": f"engineer {uuid.uuid4().hex[:8]}"},
        timeout=60,
    )


def test_drain_and_graceful_shutdown_fit_in_the_stop_grace_period() -> None:
    # Swarm's stop_grace_period for the service, after which it sends SIGKILL.
    assert DRAIN_SECONDS + GRACEFUL_SHUTDOWN_SECONDS < SERVICE_STOP_GRACE_SECONDS


def test_sigterm_drains_then_finishes_in_flight_requests_and_exits_cleanly(
    tmp_path: Path, fakes: StandinState, fakes_url: str
) -> None:
    fakes.jsearch.script = ["slow"]  # the first call only; later ones answer at once
    fakes.jsearch.delay_seconds = SLOW_UPSTREAM_SECONDS
    env = {
        "WORKERS": "2",
        "RAPID_API_KEY": JSEARCH_KEY,
        "JSEARCH_BASE_URL": fakes_url,
        "UPSTREAM_TIMEOUT_SECONDS": str(SLOW_UPSTREAM_SECONDS + 5),
        "RATE_LIMIT": "1000/minute",
    }
    log_path = tmp_path / "log"
    with run_service_process(env, log_path=log_path) as (url, process):
        outcome: dict[str, httpx.Response | BaseException] = {}

        def slow_search() -> None:
            try:
                outcome["response"] = _search(url)
            except BaseException as error:  # reported below, in the test's thread
                outcome["error"] = error

        in_flight = threading.Thread(target=slow_search)
        in_flight.start()
        deadline = time.monotonic() + 15
        while fakes.jsearch.calls == 0:
            assert time.monotonic() < deadline, "the search never reached the fake upstream"
            time.sleep(0.02)

        process.terminate()  # SIGTERM to the main process only, as `docker stop` does
        signalled = time.monotonic()

        # (a) /health turns 503 "draining" at once, on every worker.
        health = httpx.get(f"{url}/health", timeout=2)
        while health.status_code == 200 and time.monotonic() - signalled < 5:
            time.sleep(0.05)
            health = httpx.get(f"{url}/health", timeout=2)
        draining_after = time.monotonic() - signalled
        assert health.status_code == 503, health.text
        assert health.json() == {"status": "draining"}
        assert draining_after < DRAINING_WITHIN_SECONDS, f"draining after {draining_after:.1f}s"
        time.sleep(0.6)  # the supervisor has signalled both workers by now
        for _ in range(10):  # new connections, spread over the two workers
            again = httpx.get(f"{url}/health", timeout=2)
            assert (again.status_code, again.json()) == (503, {"status": "draining"})

        # (b) New requests are still served during the drain, until near its end.
        response = _search(url)
        assert response.status_code == 200, response.text
        assert response.json()["jobs"]
        time.sleep(max(0.0, signalled + DRAIN_SECONDS - 1.5 - time.monotonic()))
        late = _search(url)
        assert late.status_code == 200, late.text
        assert in_flight.is_alive(), "the slow request should still be in flight"

        # (c) Then uvicorn stops accepting; the in-flight request finishes; exit 0.
        exit_code = process.wait(timeout=DRAIN_SECONDS + GRACEFUL_SHUTDOWN_SECONDS)
        stopped_after = time.monotonic() - signalled
        in_flight.join(timeout=5)

    assert exit_code == 0
    assert "error" not in outcome, outcome.get("error")
    slow = outcome["response"]
    assert isinstance(slow, httpx.Response)
    assert slow.status_code == 200, slow.text
    assert slow.json()["jobs"]
    # It waited for the drain and the slow request, and no more than that.
    assert DRAIN_SECONDS <= stopped_after < SLOW_UPSTREAM_SECONDS + 3, f"{stopped_after:.1f}s"
    log = log_path.read_text()
    assert log.count("Received SIGTERM; draining") == 2, "both workers drained"
    assert log.count("Finished server process") == 2


def test_a_single_worker_drains_too(tmp_path: Path, fakes: StandinState, fakes_url: str) -> None:
    """WORKERS=1 (`make run`'s default) runs the server in the main process itself."""
    env = {"WORKERS": "1", "RAPID_API_KEY": JSEARCH_KEY, "JSEARCH_BASE_URL": fakes_url}
    with run_service_process(env, log_path=tmp_path / "log") as (url, process):
        process.terminate()
        signalled = time.monotonic()
        health = httpx.get(f"{url}/health", timeout=2)
        while health.status_code == 200 and time.monotonic() - signalled < 5:
            time.sleep(0.05)
            health = httpx.get(f"{url}/health", timeout=2)
        assert (health.status_code, health.json()) == (503, {"status": "draining"})
        assert time.monotonic() - signalled < DRAINING_WITHIN_SECONDS
        assert _search(url).status_code == 200
        exit_code = process.wait(timeout=DRAIN_SECONDS + GRACEFUL_SHUTDOWN_SECONDS)
        assert time.monotonic() - signalled >= DRAIN_SECONDS
    # uvicorn re-raises the signal once shut down; as a container's PID 1 that exit is 0.
    assert exit_code == -signal.SIGTERM


def test_sigint_skips_the_drain(tmp_path: Path) -> None:
    """Ctrl-C under `make run` stops at once."""
    with run_service_process({"WORKERS": "1"}, log_path=tmp_path / "log") as (_, process):
        process.send_signal(signal.SIGINT)
        signalled = time.monotonic()
        assert process.wait(timeout=DRAIN_SECONDS + GRACEFUL_SHUTDOWN_SECONDS) == 0
        assert time.monotonic() - signalled < DRAIN_SECONDS
