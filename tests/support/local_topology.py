"""One topology instance ("test") shared by the container tests (a pytest plugin,
registered once in tests/conftest.py; bench/rollout.py prepares it too).

It never touches a developer's `make local`: its own names (jobsearch-test-*),
subnet, ports and state directory. Each test asks for `topology`, which runs
`up` first: a no-op when everything already runs the service image, and a
rollout back to it when an earlier test left another image running.

Its job sources are the topology's own stand-ins (infra/standins), as on a
`make local` without keys; the tests script them through the engine
(infra/local/standin_control.py), and switch them to generated listings.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import docker
import pytest
from docker.errors import NotFound

from harness.servers import free_port
from infra.local.runner import LocalRunner
from infra.local.standin_control import control_standin
from infra.local.state import LocalConfig, LocalState
from infra.standins import JSEARCH_KEY, SOURCES, THEIRSTACK_KEY
from infra.topology import Topology
from tests.support.docker import TestImages

# The DinD cluster's (tests/support/swarm_cluster.py) hand-made stand-ins container.
FAKES_PORT = 9100
FAKES_ALIAS = "fakes"
TEST_SUBNET_OCTET = 232


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


def prepare_test_instance(
    client: docker.DockerClient,
    images: TestImages,
    *,
    settings: Mapping[str, str],
    say: Callable[[str], None],
) -> LocalRunner:
    """The "test" instance's runner, configured, with what an interrupted run left removed.

    Shared by this suite and bench/rollout.py; `settings` are the service's
    (both job sources are the topology's stand-ins).
    """
    state = LocalState("test")
    config = LocalConfig(
        environment="test",
        images="debian",
        http_port=free_port(),
        postgres_port=free_port(),
        subnet_octet=TEST_SUBNET_OCTET,
        replicas=2,
        workers=2,
        proxy_image=images.proxy,
        redis_image=images.redis,
        postgres_image=images.postgres,
        standin_image=images.standins,
        sample_sources=SOURCES,
        settings={"LOG_LEVEL": "WARNING", **settings},
    )
    runner = LocalRunner(client, state, config, say=say)
    runner.down(volumes=True)
    state.prepare()
    state.save_config(config)
    state.set_api_keys({"RAPID_API_KEY": JSEARCH_KEY, "THEIRSTACK_API_KEY": THEIRSTACK_KEY})
    return runner


def _fakes_name(runner: LocalRunner) -> str:
    return f"{runner.topology().prefix}-fakes"


def ensure_fakes(client: docker.DockerClient, runner: LocalRunner, image: str, port: int) -> None:
    """Stand-ins for the DinD cluster, reachable from its replicas as http://fakes:9100
    (the "test" instance runs the topology's own stand-in services instead)."""
    name = _fakes_name(runner)
    with contextlib.suppress(NotFound):
        existing = client.containers.get(name)
        if existing.status == "running":
            return
        existing.remove(force=True)
    topology = runner.topology()
    network = topology.network.name
    container = client.containers.create(
        image,
        name=name,
        user="10001:10001",
        read_only=True,
        tmpfs={"/tmp": "rw,noexec,nosuid,size=16m"},
        # Labelled like the topology's containers, so `down` removes it too.
        labels={
            "org.jobsearch.project": "jobsearch",
            "org.jobsearch.environment": runner.config.environment,
            "org.jobsearch.role": "fakes",
        },
        ports={f"{FAKES_PORT}/tcp": ("127.0.0.1", port)},
        network=network,
        networking_config={network: client.api.create_endpoint_config(aliases=[FAKES_ALIAS])},
        healthcheck={
            "test": [
                "CMD",
                "python",
                "-c",
                f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{FAKES_PORT}/_control')",
            ],
            "interval": 1_000_000_000,
            "retries": 30,
        },
    )
    container.start()
    deadline = time.monotonic() + 60
    while True:
        container.reload()
        if (container.attrs["State"].get("Health") or {}).get("Status") == "healthy":
            return
        if time.monotonic() > deadline or container.status == "exited":
            raise RuntimeError(f"{name} is not healthy: {container.logs(tail=5)!r}")
        time.sleep(0.5)


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
