"""A service replica dies mid-load: the proxy routes around it, the engine replaces it.

The replica's process is killed from the host (SIGKILL), as the kernel's OOM
killer or a crash would end it. The engine sees its task fail, drops it from
the swarm's DNS and starts a new task in its slot, which joins the DNS once its
health check passes.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from docker.models.containers import Container

from harness.background import BackgroundLoad
from harness.load import Call
from tests.support.local_topology import TestTopology

pytestmark = pytest.mark.docker

CONCURRENCY = 8
BACK_WITHIN_SECONDS = 90


def _load_calls() -> list[Call]:
    searches = [
        Call("POST", "/api/jobs/jsearch", {"jobTitle": f"kill drill {number}"})
        for number in range(8)
    ]
    return [*searches, Call("GET", "/health")]


def _kill_process(container: Container) -> None:
    pid = int(container.attrs["State"]["Pid"])
    assert pid > 0, f"{container.name} has no process"
    try:
        os.kill(pid, signal.SIGKILL)
    except PermissionError:
        pytest.fail("killing a container's process from the host needs root (or its uid)")


def test_killed_replica_is_routed_around_and_replaced(topology: TestTopology) -> None:
    runner = topology.runner
    replicas = runner.containers("api")
    assert len(replicas) == 2
    victim = replicas[0]
    with BackgroundLoad(topology.url, _load_calls(), concurrency=CONCURRENCY) as load:
        load.wait_for(100)
        _kill_process(victim)
        killed_at, killed_time = load.total, time.monotonic()
        deadline = killed_time + BACK_WITHIN_SECONDS
        while True:
            running = runner.containers("api")
            if len(running) == 2 and victim.id not in {c.id for c in running}:
                break
            assert time.monotonic() < deadline, (
                f"no replacement for {victim.name} within {BACK_WITHIN_SECONDS}s: "
                f"{[c.name for c in running]}"
            )
            time.sleep(0.5)
        whole_after = time.monotonic() - killed_time
        failed_until_whole, back_at = load.failed, load.total
        # Serving goes on, on both replicas again.
        load.wait_for(back_at + 500)

    tally = load.tally
    print(
        f"kill drill: {tally.total} requests, {len(tally.failures)} failed, "
        f"statuses {dict(tally.statuses)}; whole again after {whole_after:.1f}s "
        f"({back_at - killed_at} requests in between)"
    )
    # The searches in flight on the killed process die with it, and so does a POST the
    # proxy tries again after the dead replica reset its connection (Caddy never buffers
    # a request body to replay it: a search that reached a replica may have made a paid
    # call). Those are 502s, in the moment of the kill. The proxy never runs out of
    # upstreams (no 503), nothing fails once the replacement serves, and no failure is
    # the service's own 500.
    assert back_at - killed_at > 0, "the load ran while the replica was replaced"
    assert len(tally.failures) == failed_until_whole, "a request failed after the replacement"
    assert failed_until_whole <= 2 * CONCURRENCY + 10, tally.failures
    assert set(tally.statuses) <= {200, 502}, tally.statuses
    assert all(": HTTP 500" not in failure for failure in tally.failures), tally.failures
    assert tally.statuses[200] >= 600
