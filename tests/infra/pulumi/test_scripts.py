"""The service component's host script, run for real, as a dev stack's local.Command
runs it (`/bin/sh -c`).

`prepare_swarm_script` puts the engine in swarm mode when it is not, and creates
the named volumes, each owned by the user of the service that mounts it (a
new volume is root's, and no service runs as root). Against this machine's
engine it creates the volumes of a dev topology and chowns them; the engine's
swarm is left as it is (it is active here, or becomes a one-node swarm, as
`ops local up` makes it). Which commands it runs when the node is not in swarm
mode is checked against a recording stand-in for `docker`, so that no test
ever changes this engine's swarm.
"""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
from docker.errors import NotFound

from infra.components.service import prepare_swarm_script
from infra.local.images import runtime_images
from infra.local.state import STATE_ROOT
from infra.topology import PROXY_UID, REDIS_UID, Images, Topology, TopologySpec, describe

SUBNET_OCTET = 239


def run(script: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )


def dev_topology(images: Images) -> Topology:
    return describe(
        TopologySpec(environment="dev", images=images, http_port=8088, subnet_octet=SUBNET_OCTET)
    )


# --- against a recording stand-in for docker --------------------------------------


@dataclass
class FakeDocker:
    directory: Path
    log: Path

    def env(self, *, swarm_state: str, existing_volumes: str = "") -> dict[str, str]:
        return {
            **os.environ,
            "PATH": f"{self.directory}:{os.environ['PATH']}",
            "FAKE_SWARM_STATE": swarm_state,
            "FAKE_VOLUMES": existing_volumes,
            "FAKE_LOG": str(self.log),
        }

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture
def fake_docker(tmp_path: Path) -> FakeDocker:
    """`docker` that logs its arguments, reports the swarm state it is given, and knows
    the volumes listed in FAKE_VOLUMES."""
    script = tmp_path / "docker"
    script.write_text(
        """#!/bin/sh
echo "$*" >> "$FAKE_LOG"
case "$1" in
  info) echo "$FAKE_SWARM_STATE" ;;
  volume)
    if [ "$2" = inspect ]; then
      for known in $FAKE_VOLUMES; do [ "$known" = "$3" ] && exit 0; done
      exit 1
    fi ;;
esac
exit 0
"""
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return FakeDocker(tmp_path, tmp_path / "calls.log")


def test_an_engine_not_in_swarm_mode_becomes_a_one_node_swarm(fake_docker: FakeDocker) -> None:
    topology = dev_topology(Images(service="api:1", proxy="caddy:2", redis="redis:7"))
    result = run(
        prepare_swarm_script(topology, "203.0.113.10"), fake_docker.env(swarm_state="inactive")
    )
    assert result.returncode == 0, result.stderr
    calls = fake_docker.calls()
    assert calls[0] == "info --format {{.Swarm.LocalNodeState}}"
    assert calls[1] == "swarm init --advertise-addr 203.0.113.10"
    volumes = [c for c in calls if c.startswith("volume create")]
    assert [v.split()[-1] for v in volumes] == [
        "jobsearch-dev-caddy-data",
        "jobsearch-dev-redis-data",
    ]
    assert all("--label org.jobsearch.environment=dev" in v for v in volumes)
    assert all("--label org.jobsearch.project=jobsearch" in v for v in volumes)
    chowns = [c for c in calls if c.startswith("run ")]
    assert chowns == [
        "run --rm --user 0:0 --network none --entrypoint chown"
        f" -v jobsearch-dev-caddy-data:/volume caddy:2 {PROXY_UID} /volume",
        "run --rm --user 0:0 --network none --entrypoint chown"
        f" -v jobsearch-dev-redis-data:/volume redis:7 {REDIS_UID} /volume",
    ]


def test_an_active_swarm_and_existing_volumes_are_kept(fake_docker: FakeDocker) -> None:
    topology = dev_topology(Images(service="api:1"))
    env = fake_docker.env(
        swarm_state="active", existing_volumes="jobsearch-dev-caddy-data jobsearch-dev-redis-data"
    )
    result = run(prepare_swarm_script(topology, "127.0.0.1"), env)
    assert result.returncode == 0, result.stderr
    calls = fake_docker.calls()
    assert not [c for c in calls if c.startswith("swarm")]
    assert not [c for c in calls if c.startswith("volume create")]
    # The owner is set again: a volume left root's by an interrupted run is mended.
    assert len([c for c in calls if c.startswith("run ")]) == 2


def test_a_failing_step_fails_the_script(fake_docker: FakeDocker, tmp_path: Path) -> None:
    (tmp_path / "docker").write_text(
        '#!/bin/sh\necho "$*" >> "$FAKE_LOG"\n[ "$1" = swarm ] && exit 1\n'
        '[ "$1" = info ] && echo inactive\nexit 0\n'
    )
    topology = dev_topology(Images(service="api:1"))
    result = run(prepare_swarm_script(topology, "127.0.0.1"), fake_docker.env(swarm_state=""))
    assert result.returncode != 0
    assert not [c for c in fake_docker.calls() if c.startswith("volume")]


# --- against this machine's engine -------------------------------------------------


def _owner(client: docker.DockerClient, image: str, volume: str) -> str:
    output: bytes = client.containers.run(
        image,
        ["stat", "-c", "%u:%g", "/volume"],
        entrypoint=[],
        user="0:0",
        network_mode="none",
        volumes={volume: {"bind": "/volume", "mode": "ro"}},
        remove=True,
    )
    return output.decode().strip()


@pytest.fixture
def fresh_volumes(docker_client: docker.DockerClient) -> Iterator[Topology]:
    """The dev topology's volumes, absent at the start; the ones this test made are
    removed at the end (any that existed before make the test skip)."""
    images = runtime_images(docker_client, "debian", STATE_ROOT / "build")
    topology = dev_topology(Images(service="unused", proxy=images.proxy, redis=images.redis))
    existing = []
    for name in topology.volumes:
        with contextlib.suppress(NotFound):
            docker_client.volumes.get(name)
            existing.append(name)
    if existing:
        pytest.skip(f"volumes {existing} exist on this engine (a dev stack?); not touching them")
    try:
        yield topology
    finally:
        for name in topology.volumes:
            with contextlib.suppress(NotFound):
                docker_client.volumes.get(name).remove(force=True)


@pytest.mark.docker
def test_on_the_engine_volumes_are_made_for_their_services_users(
    docker_client: docker.DockerClient, fresh_volumes: Topology
) -> None:
    topology = fresh_volumes
    script = prepare_swarm_script(topology, "127.0.0.1")
    env = {**os.environ}
    result = run(script, env)
    assert result.returncode == 0, result.stderr
    assert docker_client.info()["Swarm"]["LocalNodeState"] == "active"
    owners = {
        "jobsearch-dev-caddy-data": (topology.proxy.image, PROXY_UID),
        "jobsearch-dev-redis-data": (topology.service("redis").image, REDIS_UID),
    }
    assert set(topology.volumes) == set(owners)
    for volume, (image, owner) in owners.items():
        labels = docker_client.volumes.get(volume).attrs["Labels"]
        assert labels == {"org.jobsearch.project": "jobsearch", "org.jobsearch.environment": "dev"}
        assert _owner(docker_client, image, volume) == owner, volume

    # A second run (a later deploy) changes nothing and succeeds.
    again = run(script, env)
    assert again.returncode == 0, again.stderr
    for volume, (image, owner) in owners.items():
        assert _owner(docker_client, image, volume) == owner
