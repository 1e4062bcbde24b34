"""`ops status` and `ops rollback` for staging/prod, through a stand-in `pulumi` CLI.

No Pulumi CLI or backend exists on this machine, so `pulumi` here is
tests/infra/ops/fake_pulumi.py: it answers with the JSON documents the real
CLI prints and records each call. The service it points at is real.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from harness.servers import closed_port
from infra.promotion import IMAGE_CONFIG_KEY
from tests.infra.ops.conftest import OpsRunner
from tests.infra.ops.fake_pulumi import history_entry, install

REPOSITORY = "ghcr.io/jobsearch-platform/jobsearch-api"
OLD = f"{REPOSITORY}@sha256:{'a' * 64}"
CURRENT = f"{REPOSITORY}@sha256:{'b' * 64}"
OTHER = f"sha256:{'c' * 64}"

State = Callable[..., Path]


@pytest.fixture
def pulumi_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> State:
    """Install the stand-in `pulumi` first on PATH, with a stack whose state is given."""
    install(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    state_path = tmp_path / "pulumi-state.json"
    monkeypatch.setenv("FAKE_PULUMI_STATE", str(state_path))

    def write(name: str = "staging", *, url: str, history: list[dict[str, Any]]) -> Path:
        outputs = {"url": url, "image_ref": CURRENT, "db_password": "[secret]"}
        state_path.write_text(
            json.dumps({"stacks": {name: {"outputs": outputs, "history": history}}})
        )
        return state_path

    return write


def calls(state_path: Path) -> list[list[str]]:
    return list(json.loads(state_path.read_text())["calls"])


def two_deploys() -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        history_entry(3, CURRENT, started=now - timedelta(hours=2)),
        history_entry(2, CURRENT, result="failed", started=now - timedelta(hours=3)),
        history_entry(1, OLD, started=now - timedelta(days=2)),
    ]


def test_status_shows_digest_health_readiness_and_deploy_age(
    pulumi_state: State, service: str, ops: OpsRunner
) -> None:
    state = pulumi_state(url=service, history=two_deploys())

    result = ops("status", "--stack", "staging", "--json")

    assert result.code == 0, result.err
    document = result.json()
    assert document["image"] == CURRENT
    assert document["url"] == service
    assert 2 * 3600 - 60 < document["deploy_age_seconds"] < 2 * 3600 + 60
    verdicts = {check["name"]: check["verdict"] for check in document["checks"]}
    assert verdicts == {"health": "pass", "readiness": "pass"}
    assert ["stack", "output", "--json", "--stack", "staging", "--non-interactive"] in calls(state)


def test_status_for_a_person(pulumi_state: State, service: str, ops: OpsRunner) -> None:
    pulumi_state(url=service, history=two_deploys())

    result = ops("status", "--stack", "staging")

    assert result.code == 0
    assert f"image    {CURRENT}" in result.out
    assert "deployed 2h00m ago" in result.out or "deployed 1h59m ago" in result.out
    assert "[secret]" not in result.out


def test_status_of_a_stack_that_does_not_answer_fails_but_still_reports(
    pulumi_state: State, ops: OpsRunner
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    pulumi_state(url=url, history=two_deploys())

    result = ops("status", "--stack", "staging", "--json")

    assert result.code == 1
    document = result.json()
    assert document["image"] == CURRENT
    health = document["checks"][0]
    assert health["verdict"] == "fail"
    assert "connection refused" in health["detail"]


def test_status_of_a_missing_stack_names_the_pulumi_failure(
    pulumi_state: State, ops: OpsRunner
) -> None:
    pulumi_state("staging", url="http://127.0.0.1:1", history=[])

    result = ops("status", "--stack", "prod")

    assert result.code == 1
    assert result.error_line == (
        "ops: error: `pulumi stack output --json --stack prod` failed: "
        "error: no stack named 'prod' found"
    )


def test_without_the_pulumi_cli_the_error_says_to_install_it(
    ops: OpsRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    for argv in (("status", "--stack", "prod"), ("rollback", "--stack", "prod")):
        result = ops(*argv)
        assert result.code == 1
        assert result.error_line.startswith("ops: error: the pulumi CLI is not installed")


@pytest.mark.parametrize("stack", ["production", "dev", ""])
def test_an_unknown_stack_is_refused_by_name(ops: OpsRunner, stack: str) -> None:
    result = ops("status", "--stack", stack)

    assert result.code == 2
    assert "argument --stack: invalid choice" in result.error_line


def test_rollback_without_a_digest_deploys_the_previous_successful_image(
    pulumi_state: State, service: str, ops: OpsRunner
) -> None:
    state = pulumi_state(url=service, history=two_deploys())

    result = ops("rollback", "--stack", "staging", "--json")

    assert result.code == 0, result.err
    assert result.json() == {"stack": "staging", "from": CURRENT, "to": OLD, "running": OLD}
    made = calls(state)
    set_image = ["config", "set", IMAGE_CONFIG_KEY, OLD, "--stack", "staging", "--non-interactive"]
    assert set_image in made
    up = next(call for call in made if call[0] == "up")
    assert "--yes" in up
    assert up[up.index("--policy-pack") + 1] == "infra/policy"
    assert made.index(set_image) < made.index(up)


def test_rollback_to_a_bare_digest_keeps_the_repository(
    pulumi_state: State, service: str, ops: OpsRunner
) -> None:
    pulumi_state(url=service, history=two_deploys())

    result = ops("rollback", "--stack", "staging", "--to", OTHER, "--json")

    assert result.code == 0, result.err
    assert result.json()["running"] == f"{REPOSITORY}@{OTHER}"


def test_rollback_with_no_earlier_image_asks_for_one(pulumi_state: State, ops: OpsRunner) -> None:
    state = pulumi_state(url="http://127.0.0.1:1", history=[history_entry(1, CURRENT)])

    result = ops("rollback", "--stack", "staging")

    assert result.code == 1
    assert "no earlier image" in result.error_line
    assert "--to" in result.error_line
    assert not any(call[0] in ("up", "config") for call in calls(state))


def test_a_failed_rollback_update_fails_loudly(pulumi_state: State, ops: OpsRunner) -> None:
    state = pulumi_state(url="http://127.0.0.1:1", history=two_deploys())
    document = json.loads(state.read_text())
    document["stacks"]["staging"]["fail_up"] = True
    state.write_text(json.dumps(document))

    result = ops("rollback", "--stack", "staging")

    assert result.code == 1
    assert result.error_line.startswith("ops: error: `pulumi up --yes")
    assert "failed" in result.error_line


@pytest.mark.parametrize(
    "bad",
    [
        "latest",
        "v1.2.3",
        "sha256:abc",
        f"{REPOSITORY}:main",
        # Refused by the stack config too, so rollback must not set it first.
        "ghcr.io/Owner/Repo@sha256:" + "a" * 64,
        "a b@sha256:" + "a" * 64,
    ],
)
def test_rollback_refuses_anything_but_a_digest(ops: OpsRunner, bad: str) -> None:
    result = ops("rollback", "--stack", "prod", "--to", bad)

    assert result.code == 2
    assert "argument --to" in result.error_line
    assert "deploys are by digest" in result.error_line


@pytest.mark.parametrize("command", ["status", "rollback"])
def test_a_local_stack_never_brought_up_says_how_to_start_it(
    ops: OpsRunner, command: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from infra.local.state import LocalState
    from infra.ops import local_stack

    # A state directory of the test's own: this machine may run `make local`.
    monkeypatch.setattr(
        local_stack, "LocalState", lambda environment: LocalState(environment, root=tmp_path)
    )

    result = ops(command, "--stack", "local")

    assert result.code == 1
    assert "run `ops local --env local up` first" in result.error_line
