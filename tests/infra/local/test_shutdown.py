"""A replica replaced during a slow request: the request finishes, then the task exits.

The engine removes the task from the swarm's DNS before it sends SIGTERM; the
service then keeps serving for its drain period and lets in-flight requests
finish, well inside the stop grace period. Exit code 0 proves it: 137 would be
the SIGKILL at the end of the grace period, cutting the request off.
"""

from __future__ import annotations

import threading
import time
import uuid

import docker
import httpx
import pytest

from tests.support.local_topology import TestTopology

pytestmark = pytest.mark.docker

UPSTREAM_DELAY_SECONDS = 8.0


def test_a_replaced_replica_finishes_its_in_flight_request(
    topology: TestTopology, docker_client: docker.DockerClient
) -> None:
    runner = topology.runner
    old = {str(container.id) for container in runner.containers("api")}
    topology.control_fakes(
        reset=True, jsearch={"default": "slow", "delay_seconds": UPSTREAM_DELAY_SECONDS}
    )
    outcome: dict[str, httpx.Response | BaseException] = {}

    def search() -> None:
        try:
            outcome["response"] = httpx.post(
                f"{topology.url}/api/jobs/jsearch",
                # A title never searched before: the answer cannot come from the cache.
                json={"jobTitle": f"engineer {uuid.uuid4().hex[:8]}"},
                timeout=90,
            )
        except BaseException as error:  # reported below, in the test's thread
            outcome["error"] = error

    request = threading.Thread(target=search)
    try:
        request.start()
        deadline = time.monotonic() + 15
        while topology.control_fakes()["jsearch"] == {"calls": 0, "default": "slow"}:
            assert time.monotonic() < deadline, "the search never reached the fake upstream"
            time.sleep(0.05)
        # Every task replaced, one at a time: the one serving the search among them.
        runner.rollout(topology.images.variant)
        request.join(timeout=60)
    finally:
        topology.control_fakes(reset=True)

    assert "error" not in outcome, outcome.get("error")
    response = outcome["response"]
    assert isinstance(response, httpx.Response)
    assert response.status_code == 200, response.text
    assert response.json()["jobs"]
    for container_id in old:
        container = docker_client.containers.get(container_id)
        state = container.attrs["State"]
        assert state["Status"] == "exited"
        assert state["ExitCode"] == 0, f"{container.name} was killed: {state}"
