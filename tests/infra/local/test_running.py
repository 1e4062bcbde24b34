"""The running containers, checked from inside with pytest-testinfra's docker backend."""

from __future__ import annotations

from typing import Any

import docker
import httpx
import pytest
import testinfra

from infra.standins import JSEARCH_KEY
from infra.topology import SERVICE_PORT, Role
from tests.support.docker import EXPECTED_PYTHON
from tests.support.local_topology import TestTopology

pytestmark = pytest.mark.docker

_LISTEN = "0A"  # TCP state LISTEN in /proc/net/tcp


def _replica_names(topology: TestTopology) -> list[str]:
    names = [container.name or "" for container in topology.runner.containers("api")]
    assert len(names) == topology.runner.config.replicas
    return names


def _container_of(topology: TestTopology, role: str) -> str:
    [container] = topology.runner.containers(role)
    return container.name or ""


def _host(name: str) -> Any:
    return testinfra.get_host(f"docker://{name}")


def _uids_of_pid_1(host: Any) -> list[int]:
    for line in host.file("/proc/1/status").content_string.splitlines():
        if line.startswith("Uid:"):
            return [int(value) for value in line.split()[1:]]
    raise AssertionError("no Uid line in /proc/1/status")


def _listening_ports(host: Any) -> set[int]:
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in host.file(table).content_string.splitlines()[1:]:
            fields = line.split()
            if fields[3] == _LISTEN:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_service_process_is_not_root(topology: TestTopology) -> None:
    for name in _replica_names(topology):
        assert _uids_of_pid_1(_host(name)) == [10001, 10001, 10001, 10001]


@pytest.mark.parametrize("role", ["proxy", "redis", "postgres"])
def test_no_container_of_the_topology_runs_as_root(topology: TestTopology, role: Role) -> None:
    spec = topology.description.service(role)
    uids = _uids_of_pid_1(_host(_container_of(topology, role)))
    assert 0 not in uids
    assert str(uids[0]) == spec.user.split(":")[0]


def test_service_port_listens(topology: TestTopology) -> None:
    for name in _replica_names(topology):
        assert SERVICE_PORT in _listening_ports(_host(name))


def test_root_filesystem_is_read_only(topology: TestTopology) -> None:
    for name in _replica_names(topology):
        host = _host(name)
        assert "ro" in host.mount_point("/").options
        attempt = host.run("touch /opt/venv/written-at-run-time")
        assert attempt.rc != 0
        assert "Read-only file system" in attempt.stderr
        # /tmp is the one writable place, and it is a tmpfs.
        assert host.mount_point("/tmp").filesystem == "tmpfs"


def test_docker_reports_every_container_healthy(
    topology: TestTopology, docker_client: docker.DockerClient
) -> None:
    names = [*_replica_names(topology)]
    names += [_container_of(topology, role) for role in ("proxy", "redis", "postgres")]
    for name in names:
        state = docker_client.containers.get(name).attrs["State"]
        assert state["Health"]["Status"] == "healthy", name


def test_python_is_the_expected_version_from_the_venv(topology: TestTopology) -> None:
    host = _host(_replica_names(topology)[0])
    version = host.check_output("python --version")
    assert version.startswith(f"Python {EXPECTED_PYTHON}.")
    assert host.check_output("command -v python") == "/opt/venv/bin/python"


def test_api_keys_are_files_for_the_service_user_alone(
    topology: TestTopology, docker_client: docker.DockerClient
) -> None:
    name = _replica_names(topology)[0]
    host = _host(name)
    key = host.file("/run/secrets/RAPID_API_KEY")
    assert key.uid == 10001
    assert key.mode == 0o400
    assert key.content_string == JSEARCH_KEY
    assert host.run("touch /run/secrets/RAPID_API_KEY").rc != 0
    # Not in the environment, not in the image.
    container = docker_client.containers.get(name)
    running_env = container.attrs["Config"]["Env"]
    image_env = docker_client.images.get(container.attrs["Image"]).attrs["Config"]["Env"]
    assert not any(item.startswith("RAPID_API_KEY=") for item in running_env)
    assert not any(item.startswith("RAPID_API_KEY=") for item in image_env)


def test_searches_work_through_the_proxy(topology: TestTopology) -> None:
    response = httpx.post(
        f"{topology.url}/api/jobs/jsearch",
        json={"jobTitle": "python developer", "city": "Austin"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["jobs"]
    ready = httpx.get(f"{topology.url}/ready", timeout=10).json()
    assert ready["checks"]["database"]["status"] == "up"
    assert ready["checks"]["rate_limit_store"]["status"] == "up"
