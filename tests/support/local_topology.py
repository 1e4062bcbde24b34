"""One topology instance ("test") shared by the container tests (a pytest plugin,
registered once in tests/conftest.py; harness/instance.py prepares it, for
bench/rollout.py too).

It never touches a developer's `make local`: its own names (jobsearch-test-*),
subnet, ports and state directory. Each test asks for `topology`, which runs
`up` first: a no-op when everything already runs the service image, and a
rollout back to it when an earlier test left another image running.

Its job sources are the topology's own stand-ins (infra/standins), as on a
`make local` without keys; the tests script them through the engine
(infra/local/standin_control.py), and switch them to generated listings.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import docker
import pytest

from harness.images import TestImages
from harness.instance import prepare_test_instance
from infra.local.runner import LocalRunner
from infra.local.standin_control import control_standin
from infra.standins import SOURCES
from infra.topology import Topology


@dataclass
class TestTopology:
    __test__ = False

    runner: LocalRunner
    images: TestImages

    @property
    def description(self) -> Topology:
        return self.runner.topology(self.images.service)

    @property
    def url(self) -> str:
        return self.description.public_url

    def control_fakes(self, **command: object) -> dict[str, object]:
        """Send the command to every source's stand-in; returns each source's
        calls and default mode, from its own stand-in."""
        return {source: control_standin(self.runner, source, command)[source] for source in SOURCES}


@pytest.fixture(scope="session")
def local_topology(
    docker_client: docker.DockerClient, test_images: TestImages
) -> Iterator[TestTopology]:
    runner = prepare_test_instance(
        docker_client,
        test_images,
        settings={"RATE_LIMIT": "1000/second", "UPSTREAM_TIMEOUT_SECONDS": "20"},
        say=lambda line: print(f"[local] {line}"),
    )
    try:
        yield TestTopology(runner, test_images)
    finally:
        runner.down(volumes=True)


@pytest.fixture
def topology(local_topology: TestTopology) -> TestTopology:
    """The shared instance, up and serving the service image."""
    local_topology.runner.up(local_topology.images.service)
    # The tests count jobs: generated ones, as many as a stand-in's `jobs` says.
    local_topology.control_fakes(reset=True, listings="generated")
    return local_topology
