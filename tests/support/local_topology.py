"""One topology instance ("test") shared by the container tests (a pytest plugin,
registered once in tests/conftest.py; bench/rollout.py prepares it too).

It never touches a developer's `make local`: its own names (jobsearch-test-*),
subnet, ports and state directory. Each test asks for `topology`, which runs
`up` first: a no-op when everything already runs the service image, and a
rollout back to it when an earlier test left another image running.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import docker
import httpx
import pytest
from docker.errors import NotFound

from infra.local.runner import LocalRunner
from infra.local.state import LocalConfig, LocalState
from infra.topology import Topology
from tests.fakes.upstreams import JSEARCH_KEY, THEIRSTACK_KEY
from tests.support.docker import TestImages
from tests.support.servers import free_port

FAKES_PORT = 9100
FAKES_ALIAS = "fakes"
TEST_SUBNET_OCTET = 232


@dataclass
class TestTopology:
    __test__ = False

    runner: LocalRunner
    images: TestImages
    fakes_url: str  # the fake upstreams' /_control, published on loopback

    @property
    def description(self) -> Topology:
        return self.runner.topology(self.images.service)

    @property
    def url(self) -> str:
        return self.description.public_url

    def control_fakes(self, **command: object) -> dict[str, object]:
        response = httpx.post(f"{self.fakes_url}/_control", json=command, timeout=5)
        response.raise_for_status()
        result: dict[str, object] = response.json()
        return result


def prepare_test_instance(
    client: docker.DockerClient,
    images: TestImages,
    *,
    settings: Mapping[str, str],
    say: Callable[[str], None],
) -> LocalRunner:
    """The "test" instance's runner, configured, with what an interrupted run left removed.

    Shared by this suite and bench/rollout.py; `settings` add to the fakes' URLs.
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
        settings={
            "JSEARCH_BASE_URL": f"http://{FAKES_ALIAS}:{FAKES_PORT}",
            "THEIRSTACK_BASE_URL": f"http://{FAKES_ALIAS}:{FAKES_PORT}",
            "LOG_LEVEL": "WARNING",
            **settings,
        },
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
    """The fake upstreams, reachable from the replicas as http://fakes:9100."""
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
        yield TestTopology(runner, test_images, fakes_url=f"http://127.0.0.1:{free_port()}")
    finally:
        runner.down(volumes=True)


@pytest.fixture
def topology(local_topology: TestTopology, docker_client: docker.DockerClient) -> TestTopology:
    """The shared instance, up and serving the service image."""
    runner = local_topology.runner
    runner.up(local_topology.images.service)
    port = int(local_topology.fakes_url.rsplit(":", 1)[1])
    ensure_fakes(docker_client, runner, local_topology.images.fakes, port)
    local_topology.control_fakes(reset=True)
    return local_topology
