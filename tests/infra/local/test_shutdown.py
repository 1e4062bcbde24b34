"""SIGTERM during a slow request: the request finishes, then the process exits."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import replace

import docker
import httpx
import pytest

from infra.local.runner import wait_healthy
from infra.local.translate import container_create_kwargs, create_container
from infra.topology import SERVICE_PORT, PortMapping
from tests.support.local_topology import TestTopology
from tests.support.servers import free_port

pytestmark = pytest.mark.docker

UPSTREAM_DELAY_SECONDS = 6.0


def test_sigterm_lets_an_in_flight_request_finish(
    topology: TestTopology, docker_client: docker.DockerClient
) -> None:
    description = topology.description
    port = free_port()
    # A replica exactly as the topology describes it, published on loopback
    # so that the test can reach it without the proxy.
    spec = replace(
        description.replicas("sigterm")[0],
        name=f"{description.prefix}-api-sigterm",
        aliases=("api-sigterm",),
        ports=(PortMapping(SERVICE_PORT, port, "127.0.0.1"),),
    )
    kwargs = container_create_kwargs(
        spec, topology.runner.container_secrets(), network=description.network.name
    )
    container = create_container(docker_client, kwargs)
    try:
        started = time.monotonic()
        container.start()
        wait_healthy([container], spec.healthcheck)
        print(f"docker start to healthy: {time.monotonic() - started:.1f}s")

        topology.control_fakes(
            reset=True, jsearch={"default": "slow", "delay_seconds": UPSTREAM_DELAY_SECONDS}
        )
        outcome: dict[str, httpx.Response | BaseException] = {}

        def search() -> None:
            try:
                outcome["response"] = httpx.post(
                    f"http://127.0.0.1:{port}/api/jobs/jsearch",
                    # A title never searched before: the answer cannot come from the cache.
                    json={"jobTitle": f"engineer {uuid.uuid4().hex[:8]}"},
                    timeout=60,
                )
            except BaseException as error:  # reported below, in the test's thread
                outcome["error"] = error

        request = threading.Thread(target=search)
        request.start()
        deadline = time.monotonic() + 15
        while topology.control_fakes()["jsearch"] == {"calls": 0, "default": "slow"}:
            assert time.monotonic() < deadline, "the search never reached the fake upstream"
            time.sleep(0.05)

        container.stop(timeout=spec.stop_timeout_seconds)  # SIGTERM, then the stop timeout
        request.join(timeout=30)

        assert "error" not in outcome, outcome.get("error")
        response = outcome["response"]
        assert isinstance(response, httpx.Response)
        assert response.status_code == 200, response.text
        assert response.json()["jobs"]
        container.reload()
        # 0: uvicorn exited by itself once the request was answered; 137 would be
        # SIGKILL at the end of the stop timeout, cutting the request off.
        assert container.attrs["State"]["ExitCode"] == 0
    finally:
        container.remove(force=True)
        topology.control_fakes(reset=True)
