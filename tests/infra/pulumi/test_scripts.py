"""The service component's shell scripts, run for real on the machine's Docker engine.

They are what switches traffic during a rollout: `prepare_state_script`
makes the proxy's host directories (owned as the proxy's user needs) and a
first Caddyfile; `reload_proxy_script` installs a new Caddyfile and reloads
Caddy, or keeps the old one. Here they run exactly as a dev stack's
local.Command runs them (`/bin/sh -c`, the Caddyfile on stdin), against a
proxy started from the same topology, with two stand-in generations behind it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import httpx
import pytest
from docker.errors import NotFound

from infra.components.service import prepare_state_script, reload_proxy_script
from infra.local.images import image_set
from infra.local.state import STATE_ROOT
from infra.local.translate import container_create_kwargs, create_container
from infra.topology import PROXY_UID, Images, Topology, TopologySpec, describe
from tests.support.servers import free_port

pytestmark = pytest.mark.docker

SUBNET_OCTET = 239
GENERATIONS = ("api-gena-1", "api-genb-1")


@dataclass
class Proxy:
    topology: Topology
    state_dir: Path
    url: str

    def run(self, script: str, stdin: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["/bin/sh", "-c", script],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def answer(self) -> str:
        return httpx.get(f"{self.url}/", timeout=5).text

    @property
    def caddyfile(self) -> Path:
        return self.state_dir / "caddy-config" / "Caddyfile"


def _remove(client: docker.DockerClient, name: str) -> None:
    with contextlib.suppress(NotFound):
        client.containers.get(name).remove(force=True)


def _wait_healthy(client: docker.DockerClient, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.containers.get(name).attrs["State"]
        if state.get("Health", {}).get("Status") == "healthy":
            return
        if state["Status"] == "exited":
            raise AssertionError(f"{name} exited: {client.containers.get(name).logs()[-2000:]!r}")
        time.sleep(0.3)
    raise AssertionError(f"{name} never became healthy")


def _answers(proxy: Proxy, body: str, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if proxy.answer() == body:
                return True
        time.sleep(0.2)
    return False


@pytest.fixture(scope="module")
def proxy(
    docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxy]:
    images = image_set(docker_client, "debian", STATE_ROOT / "build")
    state_dir = tmp_path_factory.mktemp("proxy-state")
    port = free_port()
    topology = describe(
        TopologySpec(
            environment="dev",
            images=Images(service="unused", proxy=images.proxy, redis=images.redis),
            http_port=port,
            bind_address="127.0.0.1",
            state_dir=str(state_dir),
            subnet_octet=SUBNET_OCTET,
        )
    )
    network = topology.network
    names = [topology.proxy.name, *(f"{topology.prefix}-{alias}" for alias in GENERATIONS)]
    for name in names:
        _remove(docker_client, name)
    with contextlib.suppress(NotFound):
        docker_client.networks.get(network.name).remove()
    created = docker_client.networks.create(
        network.name,
        driver="bridge",
        ipam=docker.types.IPAMConfig(
            pool_configs=[
                docker.types.IPAMPool(
                    subnet=network.subnet, gateway=network.gateway, iprange=network.dynamic_range
                )
            ]
        ),
    )
    try:
        for alias in GENERATIONS:
            # A stand-in replica: answers every path (its /health too) with its generation.
            docker_client.containers.run(
                images.proxy,
                ["caddy", "respond", "--listen", ":8000", "--body", alias],
                name=f"{topology.prefix}-{alias}",
                network=network.name,
                networking_config={
                    network.name: docker_client.api.create_endpoint_config(aliases=[alias])
                },
                user=PROXY_UID,
                detach=True,
            )
        yield Proxy(topology, state_dir, f"http://127.0.0.1:{port}")
    finally:
        for name in names:
            _remove(docker_client, name)
        created.remove()
        subprocess.run(["rm", "-rf", str(state_dir)], check=False)


def test_state_then_proxy_then_switch_then_refuse_a_bad_caddyfile(
    docker_client: docker.DockerClient, proxy: Proxy
) -> None:
    topology = proxy.topology
    first = topology.caddyfile((GENERATIONS[0],))

    prepared = proxy.run(prepare_state_script(topology), first)
    assert prepared.returncode == 0, prepared.stderr
    config_dir, data_dir = proxy.caddyfile.parent, proxy.state_dir / "caddy-data"
    assert config_dir.stat().st_uid == os.getuid(), "the deploy user writes the Caddyfile"
    assert f"{data_dir.stat().st_uid}:{data_dir.stat().st_gid}" == PROXY_UID
    assert oct(data_dir.stat().st_mode & 0o777) == "0o700", "certificates are Caddy's alone"
    assert proxy.caddyfile.read_text() == first

    # Running it again (a later deploy) keeps the Caddyfile the proxy serves.
    again = proxy.run(prepare_state_script(topology), topology.caddyfile(("elsewhere",)))
    assert again.returncode == 0, again.stderr
    assert proxy.caddyfile.read_text() == first

    container = create_container(
        docker_client, container_create_kwargs(topology.proxy, {}, network=topology.network.name)
    )
    container.start()
    _wait_healthy(docker_client, topology.proxy.name)
    assert _answers(proxy, GENERATIONS[0])

    started = docker_client.containers.get(topology.proxy.name).attrs["State"]["StartedAt"]
    second = topology.caddyfile((GENERATIONS[1],))
    switched = proxy.run(reload_proxy_script(topology), second)
    assert switched.returncode == 0, switched.stderr
    assert proxy.caddyfile.read_text() == second
    assert _answers(proxy, GENERATIONS[1]), "Caddy reloaded onto the new generation"
    state = docker_client.containers.get(topology.proxy.name).attrs["State"]
    assert state["Running"]
    assert state["StartedAt"] == started, "reloaded, not restarted"

    broken = proxy.run(reload_proxy_script(topology), "this is { not a Caddyfile\n")
    assert broken.returncode != 0
    assert proxy.caddyfile.read_text() == second, (
        "a Caddyfile that does not validate is not installed"
    )
    assert _answers(proxy, GENERATIONS[1], timeout=3)
