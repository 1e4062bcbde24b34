"""The VM's first-boot setup keeps containers away from the Hetzner metadata service (review L4).

The metadata service (169.254.169.254) serves the VM's user data, which holds
the SSH host private key, to any process that asks, containers included. The
cloud-init document installs a DOCKER-USER rule that drops what containers send
there; here it is read from the rendered document and run, as root, in network
namespaces built like a Docker host: a container, the host routing for it
(with Docker's FORWARD -> DOCKER-USER chain), and a metadata server beyond.

These tests import only the host component, so they run while the service
component changes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.components.host import IMAGE_PRUNE_CRON, cloud_init
from infra.topology import NOFILE_LIMIT

METADATA = "169.254.169.254"
METADATA_SCRIPT = "/usr/local/sbin/jobsearch-block-metadata"
METADATA_UNIT = "/etc/systemd/system/jobsearch-block-metadata.service"


def cloud_init_document(**changes: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "user": "deploy",
        "user_public_key": "ssh-ed25519 AAAAdeploy deploy",
        "host_private_key": "fake-host-private-key",
        "host_public_key": "ssh-ed25519 AAAAhost",
        "ssh_port": 22,
        "public_ports": (80, 443),
    }
    arguments.update(changes)
    document: dict[str, Any] = yaml.safe_load(cloud_init(**arguments))
    return document


def written(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["path"]: entry for entry in document["write_files"]}


def test_cloud_init_installs_the_metadata_rule_with_docker() -> None:
    document = cloud_init_document()
    files = written(document)

    script = files[METADATA_SCRIPT]
    assert script["permissions"] == "0755"
    assert script["content"].startswith("#!/bin/sh\n")
    unit = files[METADATA_UNIT]["content"].splitlines()
    # Again whenever Docker (re)starts, after it has made its chains; never before.
    for line in (
        "After=docker.service",
        "PartOf=docker.service",
        "WantedBy=docker.service",
        f"ExecStart={METADATA_SCRIPT}",
        "RemainAfterExit=yes",
    ):
        assert line in unit, line
    commands = document["runcmd"]
    enable = ["systemctl", "enable", "--now", "jobsearch-block-metadata.service"]
    assert commands.index(enable) > commands.index(["systemctl", "enable", "--now", "docker"])


# --- the rule itself, in network namespaces ----------------------------------------


def _can_use_namespaces() -> str | None:
    if os.geteuid() != 0:
        return "needs root (ip netns, iptables)"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None


def sh(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=check)


@dataclass(frozen=True)
class DockerHost:
    """ctr (a container) -> host (routes, Docker's chains) -> meta (the metadata service)."""

    container: str
    host: str
    meta: str

    def run_on_host(self, script: Path) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.host, "sh", str(script))

    def reaches(self, address: str) -> bool:
        probe = (
            "import socket, sys\n"
            "try:\n"
            f"    socket.create_connection(({address!r}, 80), timeout=2).close()\n"
            "except OSError:\n"
            "    sys.exit(1)\n"
        )
        result = sh("ip", "netns", "exec", self.container, sys.executable, "-c", probe, check=False)
        return result.returncode == 0

    def docker_user_rules(self) -> list[str]:
        listed = sh("ip", "netns", "exec", self.host, "iptables", "-S", "DOCKER-USER").stdout
        return [line for line in listed.splitlines() if line.startswith("-A DOCKER-USER")]


@pytest.fixture
def docker_host() -> Iterator[DockerHost]:
    reason = _can_use_namespaces()
    if reason:
        pytest.skip(reason)
    tag = f"{os.getpid() % 100000}"
    names = DockerHost(f"js-ctr-{tag}", f"js-host-{tag}", f"js-meta-{tag}")
    server: subprocess.Popen[bytes] | None = None
    try:
        for name in (names.container, names.host, names.meta):
            sh("ip", "netns", "add", name)
            sh("ip", "-n", name, "link", "set", "lo", "up")
        # The container's veth to the host (Docker's bridge, reduced to one link).
        sh("ip", "link", "add", f"jc{tag}", "netns", names.container, "type", "veth",
           "peer", "name", f"jh{tag}", "netns", names.host)  # fmt: skip
        # The host's uplink, with the metadata service beyond it.
        sh("ip", "link", "add", f"ju{tag}", "netns", names.host, "type", "veth",
           "peer", "name", f"jm{tag}", "netns", names.meta)  # fmt: skip
        for ns, link, address in (
            (names.container, f"jc{tag}", "10.201.0.2/24"),
            (names.host, f"jh{tag}", "10.201.0.1/24"),
            (names.host, f"ju{tag}", "192.0.2.1/24"),
            (names.meta, f"jm{tag}", "192.0.2.2/24"),
        ):
            sh("ip", "-n", ns, "addr", "add", address, "dev", link)
            sh("ip", "-n", ns, "link", "set", link, "up")
        sh("ip", "-n", names.meta, "addr", "add", f"{METADATA}/32", "dev", "lo")
        sh("ip", "-n", names.container, "route", "add", "default", "via", "10.201.0.1")
        sh("ip", "-n", names.meta, "route", "add", "default", "via", "192.0.2.1")
        sh("ip", "-n", names.host, "route", "add", f"{METADATA}/32", "via", "192.0.2.2")
        sh("ip", "netns", "exec", names.host, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        # What dockerd sets up: FORWARD sends everything through DOCKER-USER first.
        sh("ip", "netns", "exec", names.host, "iptables", "-N", "DOCKER-USER")
        sh("ip", "netns", "exec", names.host, "iptables", "-A", "DOCKER-USER", "-j", "RETURN")
        sh("ip", "netns", "exec", names.host, "iptables", "-I", "FORWARD", "-j", "DOCKER-USER")
        server = subprocess.Popen(
            ["ip", "netns", "exec", names.meta, sys.executable, "-m", "http.server", "80"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while not names.reaches("192.0.2.2"):
            assert time.monotonic() < deadline, "the stand-in metadata server did not start"
            time.sleep(0.2)
        yield names
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        for name in (names.container, names.host, names.meta):
            sh("ip", "netns", "del", name, check=False)


def test_containers_cannot_reach_the_metadata_service(
    docker_host: DockerHost, tmp_path: Path
) -> None:
    script = tmp_path / "block-metadata"
    script.write_text(written(cloud_init_document())[METADATA_SCRIPT]["content"])
    assert docker_host.reaches(METADATA), "without the rule, a container reaches it"

    docker_host.run_on_host(script)
    docker_host.run_on_host(script)  # again, as after a Docker restart: one rule

    assert not docker_host.reaches(METADATA)
    assert docker_host.reaches("192.0.2.2"), "everything else is still routed"
    dropping = [rule for rule in docker_host.docker_user_rules() if METADATA in rule]
    assert dropping == [f"-A DOCKER-USER -d {METADATA}/32 -j DROP"]
    assert docker_host.docker_user_rules()[0] == dropping[0], "before Docker's RETURN"


# --- the smoke checks' own login (review M2) ----------------------------------------

SMOKE_KEY = "ssh-ed25519 AAAAsmoke smoke@ci"


def test_cloud_init_gives_the_smoke_checks_a_restricted_user_outside_the_docker_group() -> None:
    from infra.components.host import SMOKE_REPORT, SMOKE_USER

    document = cloud_init_document(smoke_public_key=SMOKE_KEY)

    users = {user["name"]: user for user in document["users"]}
    assert set(users) == {"deploy", SMOKE_USER}
    smoke = users[SMOKE_USER]
    assert "groups" not in smoke
    assert smoke["lock_passwd"] is True
    # The key can run the report and nothing else: no shell, no forwarding, no pty.
    assert smoke["ssh_authorized_keys"] == [
        f'restrict,command="sudo -n {SMOKE_REPORT}" {SMOKE_KEY}'
    ]
    usermods = [c for c in document["runcmd"] if c[0] == "usermod"]
    assert usermods == [["usermod", "-aG", "docker", "deploy"]]
    files = written(document)
    sudoers = files["/etc/sudoers.d/jobsearch-smoke"]
    assert sudoers["permissions"] == "0440"
    assert sudoers["content"] == f'{SMOKE_USER} ALL=(root) NOPASSWD: {SMOKE_REPORT} ""\n'
    assert files[SMOKE_REPORT]["permissions"] == "0755"
    sshd = files["/etc/ssh/sshd_config.d/10-jobsearch.conf"]["content"]
    assert f"AllowUsers deploy {SMOKE_USER}\n" in sshd


def test_without_a_smoke_key_there_is_no_smoke_user() -> None:
    document = cloud_init_document()

    assert [user["name"] for user in document["users"]] == ["deploy"]
    assert (
        "AllowUsers deploy\n"
        in written(document)["/etc/ssh/sshd_config.d/10-jobsearch.conf"]["content"]
    )


def test_cloud_init_makes_a_docker_swarm_mode_accepts_with_limits_and_pruning() -> None:
    document = cloud_init_document()
    files = written(document)
    daemon = json.loads(files["/etc/docker/daemon.json"]["content"])
    # dockerd refuses `docker swarm init` with live-restore on.
    assert "live-restore" not in daemon
    nofile = daemon["default-ulimits"]["nofile"]
    assert nofile["Soft"] == nofile["Hard"] == NOFILE_LIMIT
    prune = files[IMAGE_PRUNE_CRON]
    assert prune["permissions"] == "0755"
    assert "docker image prune --all --force --filter until=" in prune["content"]
    assert "cron" in document["packages"]
