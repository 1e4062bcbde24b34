"""The components' pure parts: cloud-init, SSH pinning (against a real sshd), the
monitoring thresholds, DNS record types, and how long a stack waits for the swarm."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from harness.servers import free_port
from infra.alerts import ALERTS, CERTIFICATE_DAYS, HTTP_PROBES, by_name, json_path
from infra.components.domain import record_type
from infra.components.host import cloud_init, docker_ssh_options, firewall_rules
from infra.components.monitoring import (
    ERROR_RATE_COUNT,
    ERROR_RATE_WINDOW_MINUTES,
    WEBHOOK_TEMPLATE,
    failure_percentage,
    sentry_alert_name,
)
from infra.components.service import converge_timeout_seconds, service_spec_args
from infra.local.engine import apt_install
from infra.swarm import ObjectRef, engine_spec
from infra.topology import Images, TopologySpec, describe
from jobsearch.contract import QUOTA_LOW_BELOW, ReadyResponse

DIGEST = "ab" * 32


def topology_spec(**changes: object) -> TopologySpec:
    spec = TopologySpec(
        environment="staging",
        images=Images(service=f"registry.example.com/acme/api@sha256:{DIGEST}"),
        domain="api.example.com",
        settings={"LOG_LEVEL": "INFO"},
    )
    return replace(spec, **changes)  # type: ignore[arg-type]


# --- cloud-init and the firewall -------------------------------------------------


def test_cloud_init_sets_up_docker_the_deploy_user_upgrades_ssh_and_a_firewall() -> None:
    text = cloud_init(
        user="deploy",
        user_public_key="ssh-ed25519 AAAAdeploy deploy",
        host_private_key="fake-host-private-key",
        host_public_key="ssh-ed25519 AAAAhost",
        ssh_port=22,
        public_ports=(80, 443),
    )
    assert text.startswith("#cloud-config\n")
    document = yaml.safe_load(text)
    assert document["ssh_keys"]["ed25519_public"] == "ssh-ed25519 AAAAhost"
    assert document["ssh_genkeytypes"] == []
    assert document["ssh_deletekeys"] is True
    assert document["ssh_pwauth"] is False
    assert document["disable_root"] is True
    [user] = document["users"]
    assert user == {
        "name": "deploy",
        "shell": "/bin/bash",
        "lock_passwd": True,
        "ssh_authorized_keys": ["ssh-ed25519 AAAAdeploy deploy"],
    }
    assert set(document["packages"]) == {"docker.io", "unattended-upgrades", "ufw", "cron"}
    files = {entry["path"]: entry["content"] for entry in document["write_files"]}
    assert 'APT::Periodic::Unattended-Upgrade "1";' in files["/etc/apt/apt.conf.d/20auto-upgrades"]
    sshd = files["/etc/ssh/sshd_config.d/10-jobsearch.conf"]
    assert "PasswordAuthentication no" in sshd
    assert "PermitRootLogin no" in sshd
    assert json.loads(files["/etc/docker/daemon.json"])["log-opts"] == {
        "max-size": "10m",
        "max-file": "5",
    }
    commands = document["runcmd"]
    assert ["usermod", "-aG", "docker", "deploy"] in commands
    assert ["ufw", "default", "deny", "incoming"] in commands
    allowed = [c[2] for c in commands if c[:2] == ["ufw", "allow"]]
    assert allowed == ["22/tcp", "80/tcp", "443/tcp"]
    # The firewall is enabled after its rules, so SSH is never cut off.
    assert commands.index(["ufw", "--force", "enable"]) > commands.index(["ufw", "allow", "22/tcp"])


def test_the_hcloud_firewall_opens_only_the_given_ports() -> None:
    rules = firewall_rules([2222, 80, 443])
    assert [(r.direction, r.protocol, r.port) for r in rules] == [
        ("in", "tcp", "2222"),
        ("in", "tcp", "80"),
        ("in", "tcp", "443"),
    ]
    assert all(r.source_ips == ["0.0.0.0/0", "::/0"] for r in rules)


# --- SSH host key pinning, against a real sshd ------------------------------------


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    """An sshd on 127.0.0.1 with a host key of its own: (port, public key line)."""
    if shutil.which("sshd", path="/usr/sbin:/usr/bin") is None:
        apt_install("openssh-server")
    directory = tmp_path_factory.mktemp("sshd")
    key = directory / "host_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    Path("/run/sshd").mkdir(exist_ok=True)
    port = free_port()
    server = subprocess.Popen(
        [
            shutil.which("sshd", path="/usr/sbin:/usr/bin") or "/usr/sbin/sshd",
            "-D", "-e", "-f", "/dev/null",
            "-h", str(key),
            "-o", f"Port={port}", "-o", "ListenAddress=127.0.0.1",
            "-o", "PidFile=none", "-o", "UsePAM=no", "-o", "PasswordAuthentication=no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    try:
        yield port, (directory / "host_ed25519.pub").read_text().strip()
    finally:
        server.terminate()
        server.wait(timeout=10)


def _ssh(port: int, host_key: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", *docker_ssh_options(host_key), "-p", str(port), "nobody@127.0.0.1", "true"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_the_pinned_host_key_is_accepted(sshd: tuple[int, str]) -> None:
    port, host_key = sshd
    result = _ssh(port, host_key)
    # Past the host check, the server refuses the (absent) user key: the
    # connection was trusted without any known_hosts file.
    assert "Permission denied" in result.stderr, result.stderr
    assert "Host key verification failed" not in result.stderr


def test_any_other_host_key_is_refused(sshd: tuple[int, str], tmp_path: Path) -> None:
    port, _ = sshd
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    result = _ssh(port, (tmp_path / "other.pub").read_text().strip())
    assert "Host key verification failed" in result.stderr, result.stderr
    assert result.returncode == 255


# --- monitoring ------------------------------------------------------------------


def test_thresholds_match_what_the_alerts_say() -> None:
    assert (
        f"less than {CERTIFICATE_DAYS} days" in by_name("JobSearchTlsCertificateExpiring").summary
    )
    high_errors = by_name("JobSearchApiHighErrorRate").summary
    assert f"More than {ERROR_RATE_COUNT} server errors" in high_errors
    assert f"in {ERROR_RATE_WINDOW_MINUTES} minutes" in high_errors
    assert f"fewer than {QUOTA_LOW_BELOW} requests" in by_name("JobSearchUpstreamQuotaLow").summary


def test_every_alert_probe_has_a_monitor() -> None:
    for alert in ALERTS:
        assert alert.probe in (*HTTP_PROBES, "certificate", "error_rate", "replicas"), alert.name
    assert HTTP_PROBES["health"].path == "/health"
    assert {HTTP_PROBES[p].path for p in ("ready", "ready_body", "quota")} == {"/ready"}


def test_probe_json_paths_come_from_the_service_models() -> None:
    assert json_path(ReadyResponse, "checks", "quota", "status") == "$.checks.quota.status"
    properties = {a.property for probe in HTTP_PROBES.values() for a in probe.assertions}
    assert "$.checks.budget.status" in properties
    with pytest.raises(ValueError, match=r"ReadyResponse has no field checks\.quotas"):
        json_path(ReadyResponse, "checks", "quotas", "status")
    with pytest.raises(ValueError, match=r"ReadyResponse\.status has no fields"):
        json_path(ReadyResponse, "status", "code")


@pytest.mark.parametrize(
    ("probe", "status_code", "body", "passes"),
    [
        ("health", 200, {"status": "healthy"}, True),
        ("health", 503, {"status": "draining"}, False),
        ("ready", 503, {"status": "unavailable"}, False),
        ("ready_body", 200, {"status": "degraded"}, False),
        ("ready_body", 200, {"status": "ready"}, True),
        ("quota", 200, {"checks": {"quota": {"status": "low"}}}, False),
        ("quota", 200, {"checks": {}}, False),
        ("budget", 200, {"checks": {"budget": {"status": "exhausted"}}}, False),
        ("budget", 200, {"checks": {"budget": {"status": "ok"}}}, True),
    ],
)
def test_a_probe_judges_an_answer_as_its_checkly_assertions_do(
    probe: str, status_code: int, body: object, passes: bool
) -> None:
    assert HTTP_PROBES[probe].passes(status_code, body) is passes  # type: ignore[index]


@pytest.mark.parametrize(
    ("locations", "percentage"), [(2, 100), (3, 70), (4, 50), (5, 40), (10, 20)]
)
def test_two_failing_locations_raise_the_alert(locations: int, percentage: int) -> None:
    assert failure_percentage(locations) == percentage
    # Never lower than two locations' worth, never more than all of them.
    assert percentage / 100 * locations >= 2 or percentage == 100


def test_sentry_alert_names_fit_and_carry_everything() -> None:
    alert = by_name("JobSearchApiHighErrorRate")
    name = sentry_alert_name(alert, "prod", "https://docs.example.com/runbooks")
    assert len(name) <= 256
    assert name.startswith("[critical] JobSearchApiHighErrorRate (prod)")
    assert alert.summary in name
    assert name.endswith("https://docs.example.com/runbooks/JobSearchApiHighErrorRate.md")
    with pytest.raises(ValueError, match="over 256"):
        sentry_alert_name(alert, "prod", "https://example.com/" + "x" * 200)


def test_the_webhook_payload_is_json_once_checkly_fills_it_in() -> None:
    rendered = re.sub(
        r"\{\{#each TAGS\}\}.*\{\{/each\}\}",
        '"severity:critical","alert:JobSearchApiDown"',
        WEBHOOK_TEMPLATE,
    )
    rendered = re.sub(r"\{\{[A-Z_]+\}\}", "value", rendered)
    payload = json.loads(rendered)
    assert payload["tags"] == ["severity:critical", "alert:JobSearchApiDown"]
    assert payload["check"] == "value"


# --- DNS and rollouts ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [("203.0.113.10", "A"), ("2001:db8::1", "AAAA"), ("server.example.net", "CNAME")],
)
def test_record_type(address: str, kind: str) -> None:
    assert record_type(address) == kind


def test_a_stack_waits_for_a_whole_rollout_of_each_service() -> None:
    topology = describe(topology_spec(replicas=3))
    api = topology.api
    check = api.healthcheck
    # Each replica in turn: healthy within the check's worst case, then watched.
    per_task = check.worst_case_seconds + api.update.monitor_seconds
    assert converge_timeout_seconds(api) > api.replicas * per_task
    fewer = describe(topology_spec(replicas=1)).api
    assert converge_timeout_seconds(fewer) < converge_timeout_seconds(api)
    refs = {name: ObjectRef(id="id", name=name) for name in topology.secret_names}
    configs = {name: ObjectRef(id="id", name=name) for name in topology.config_files}
    args = service_spec_args(engine_spec(api, topology.network, refs, configs))
    assert args["update_config"].monitor == f"{api.update.monitor_seconds}s"
    assert api.update.monitor_seconds >= check.worst_case_seconds
