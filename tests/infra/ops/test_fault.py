"""`ops local fault`: its arguments, the live-source and TheirStack-quota refusals, and that
every fault names a real alert and runbook. (What each fault does to a running instance:
tests/infra/local/test_faults.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import docker
import pytest

from infra.alerts import ALERTS
from infra.local.runner import LocalRunner
from infra.local.state import LocalConfig, LocalState
from infra.ops import fault
from infra.ops.cli import OpsError
from infra.ops.local import sample_sources, source_lines
from tests.infra.ops.conftest import OpsRunner

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["jsearch", "explode"], "invalid choice: 'explode'"),
        (["indeed", "healthy"], "invalid choice: 'indeed'"),
        (["postgres", "slow"], "invalid choice: 'slow'"),
        (["redis", "unreachable"], "invalid choice: 'unreachable'"),
        (["jsearch"], "the following arguments are required: mode"),
    ],
)
def test_unknown_targets_and_modes_are_argparse_errors(
    ops: OpsRunner, argv: list[str], named: str
) -> None:
    result = ops("local", "fault", *argv)
    assert result.code == 2
    assert named in result.err


def test_theirstack_quota_low_is_refused_with_the_reason(ops: OpsRunner) -> None:
    result = ops("local", "--env", "test", "fault", "theirstack", "quota-low", "--json")
    assert result.code == 1
    assert "TheirStack reports no quota" in result.err
    assert "ops local fault jsearch quota-low" in result.err
    assert result.out == ""


def test_a_source_with_a_real_key_is_refused(tmp_path: Path) -> None:
    # The refusal comes before any call to the engine: there is none here.
    runner = LocalRunner(
        cast(docker.DockerClient, None),
        LocalState("test", root=tmp_path),
        LocalConfig(environment="test", sample_sources=("theirstack",)),
    )
    with pytest.raises(OpsError, match=r"jsearch is live: RAPID_API_KEY comes from \.env"):
        fault._switch_source(runner, "jsearch", "errors", fault.SOURCE_FAULTS["errors"])


def test_every_fault_names_a_real_alert_and_its_runbook() -> None:
    names = {alert.name for alert in ALERTS}
    faults = {**fault.SOURCE_FAULTS, **fault.DATASTORE_FAULTS}
    alerted = {f.alert for f in faults.values() if f.alert}
    assert alerted <= names
    assert {"JobSearchApiDegraded", "JobSearchUpstreamQuotaLow"} <= alerted
    for mode, chosen in faults.items():
        report = fault._report("local", "jsearch", mode, chosen)
        if chosen.alert:
            assert (REPO_ROOT / report["runbook"]).is_file()
        else:
            assert report["runbook"] is None


def test_the_report_says_how_to_undo_a_fault() -> None:
    errors = fault._report("test", "jsearch", "errors", fault.SOURCE_FAULTS["errors"])
    assert errors["undo"] == "ops local --env test fault jsearch healthy"
    assert errors["alert"] == "JobSearchApiDegraded"
    stop = fault._report("local", "redis", "stop", fault.DATASTORE_FAULTS["stop"])
    assert stop["undo"] == "ops local fault redis start"
    healthy = fault._report("local", "jsearch", "healthy", fault.SOURCE_FAULTS["healthy"])
    assert healthy["undo"] is None


def test_sources_without_a_key_get_stand_ins() -> None:
    assert sample_sources({}) == ("jsearch", "theirstack")
    assert sample_sources({"RAPID_API_KEY": "k"}) == ("theirstack",)
    assert sample_sources({"RAPID_API_KEY": "k", "THEIRSTACK_API_KEY": "t"}) == ()
    lines = source_lines(("theirstack",), "http://127.0.0.1:8080")
    assert "  jsearch: live (key from .env)" in lines
    assert "  theirstack: sample data (stand-in)" in lines
    assert any(
        line.startswith("try: curl") and "http://127.0.0.1:8080/api/jobs/" in line for line in lines
    )
