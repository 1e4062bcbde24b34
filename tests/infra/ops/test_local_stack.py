"""`ops status`, `ops rollback` and `ops diagnose` against the real local topology.

The topology is the suite's own instance ("test": proxy, two replicas, Redis,
Postgres and the fake upstreams in containers), from tests/infra/local.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import testinfra

from harness.servers import closed_port
from tests.infra.ops.conftest import OpsRunner
from tests.infra.ops.fake_pulumi import install
from tests.smoke import host_checks
from tests.support.local_topology import TestTopology

pytestmark = pytest.mark.docker


def checks_of(document: dict[str, object]) -> dict[str, str]:
    return {str(c["name"]): str(c["verdict"]) for c in document["checks"]}  # type: ignore[attr-defined]


def test_status_shows_the_running_image_health_and_age(
    topology: TestTopology, ops: OpsRunner
) -> None:
    result = ops("status", "--stack", "test", "--json")

    assert result.code == 0, result.err
    document = result.json()
    assert document["image"] == topology.images.service
    assert document["url"] == topology.url
    assert checks_of(document) == {
        "health": "pass",
        "readiness": "pass",
        "replicas": "pass",
        "services": "pass",
    }
    roles = sorted(task["role"] for task in document["tasks"])
    assert roles == [
        "api", "api", "postgres", "proxy", "redis", "standin-jsearch", "standin-theirstack",
    ]  # fmt: skip
    running = [r for r in document["replicas"] if r["state"] == "running"]
    assert len(running) == 2
    assert {r["image"] for r in running} == {topology.images.service}
    assert 0 <= document["deploy_age_seconds"] < 24 * 3600


def test_rollback_to_a_digest_then_back_to_the_previous_image(
    topology: TestTopology, ops: OpsRunner
) -> None:
    variant = topology.images.variant

    to_variant = ops("rollback", "--stack", "test", "--to", variant, "--json")

    assert to_variant.code == 0, to_variant.err
    assert to_variant.json()["running"] == variant
    assert ops("status", "--stack", "test", "--json").json()["image"] == variant

    back = ops("rollback", "--stack", "test", "--json")

    assert back.code == 0, back.err
    assert back.json() == {
        "stack": "test",
        "from": variant,
        "to": topology.images.service,
        "running": topology.images.service,
    }
    status = ops("status", "--stack", "test", "--json").json()
    assert status["image"] == topology.images.service
    assert checks_of(status)["health"] == "pass"


def test_rollback_to_an_image_the_engine_lacks_is_one_clear_line(
    topology: TestTopology, ops: OpsRunner
) -> None:
    missing = "registry.invalid/nothing@sha256:" + "f" * 64

    result = ops("rollback", "--stack", "test", "--to", missing)

    assert result.code == 1
    assert result.error_line.startswith("ops: error: image registry.invalid/nothing@sha256:")
    assert ops("status", "--stack", "test", "--json").json()["image"] == topology.images.service


def test_diagnose_through_the_proxy(topology: TestTopology, ops_process: OpsRunner) -> None:
    result = ops_process("diagnose", "--url", topology.url, "--json")

    assert result.code == 0, result.out + result.err
    document = result.json()
    verdicts = checks_of(document)
    assert verdicts["health"] == verdicts["readiness"] == verdicts["security headers"] == "pass"
    metrics = next(c for c in document["checks"] if c["name"] == "metrics")
    assert "not served at this URL" in metrics["detail"]  # the proxy keeps /metrics private
    assert verdicts["source jsearch"] == verdicts["source theirstack"] == "pass"


def test_the_smoke_tests_host_checks_pass_on_the_local_topology(topology: TestTopology) -> None:
    host_checks.check_topology(testinfra.get_host("local://"), "test")


def test_the_host_checks_catch_a_replica_running_as_root(topology: TestTopology) -> None:
    host = testinfra.get_host("local://")
    by_name = host_checks.containers(host, "test")
    replica = next(
        doc for doc in by_name.values() if doc["Config"]["Labels"]["org.jobsearch.role"] == "api"
    )

    class RootReplica:
        """The same host, but one replica reports running as root."""

        class docker:
            @staticmethod
            def get_containers(**filters: str) -> list[object]:
                documents = [dict(doc) for doc in by_name.values()]
                for document in documents:
                    if document["Id"] == replica["Id"]:
                        document["Config"] = {**document["Config"], "User": "0:0"}
                return [
                    type("C", (), {"inspect": staticmethod(lambda d=d: d)})() for d in documents
                ]

    with pytest.raises(AssertionError, match="runs as '0:0'"):
        host_checks.check_topology(RootReplica(), "test")


def test_stack_status_lists_the_swarms_nodes_and_tasks(
    topology: TestTopology,
    ops: OpsRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stack's manager, asked as `ops status --stack staging` asks it (its `docker_host`
    output): here the local engine stands in for the manager over SSH."""
    install(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    state_path = tmp_path / "pulumi-state.json"
    monkeypatch.setenv("FAKE_PULUMI_STATE", str(state_path))
    outputs = {
        "url": topology.url,
        "image_ref": topology.images.service,
        "environment": "test",
        "docker_host": "unix:///var/run/docker.sock",
    }
    state_path.write_text(json.dumps({"stacks": {"staging": {"outputs": outputs, "history": []}}}))

    result = ops("status", "--stack", "staging", "--json")

    assert result.code == 0, result.err
    document = result.json()
    [node] = document["nodes"]
    assert (node["state"], node["availability"], node["role"]) == ("ready", "active", "manager")
    running = [r for r in document["replicas"] if r["state"] == "running"]
    assert len(running) == 2
    assert {r["node"] for r in running} == {node["hostname"]}
    assert checks_of(document)["replicas"] == "pass"
    text = ops("status", "--stack", "staging")
    assert f"node     {node['hostname']} (manager): ready, active" in text.out


def test_stack_status_says_when_the_manager_does_not_answer(
    topology: TestTopology, ops: OpsRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    state_path = tmp_path / "pulumi-state.json"
    monkeypatch.setenv("FAKE_PULUMI_STATE", str(state_path))
    outputs = {
        "url": topology.url,
        "environment": "test",
        "docker_host": f"tcp://127.0.0.1:{closed_port()}",
    }
    state_path.write_text(json.dumps({"stacks": {"staging": {"outputs": outputs, "history": []}}}))

    document = ops("status", "--stack", "staging", "--json").json()

    swarm = next(c for c in document["checks"] if c["name"] == "swarm")
    assert swarm["verdict"] == "warn"
    assert "did not answer" in swarm["detail"]
