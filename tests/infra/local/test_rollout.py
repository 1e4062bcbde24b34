"""Rollouts run by the engine: under load, of a broken image, and rolled back in one command."""

from __future__ import annotations

import json

import pytest

from harness.background import BackgroundLoad
from harness.load import Call
from infra.local.runner import RolloutError
from infra.ops.cli import main as ops_main
from tests.support.local_topology import TestTopology

pytestmark = pytest.mark.docker

MIN_REQUESTS = 2_000
HEALTH = [Call("GET", "/health")]


def _running_images(topology: TestTopology) -> dict[str, str]:
    return {
        str(container.id): str(container.attrs["Image"])
        for container in topology.runner.containers("api")
    }


def _ops(*args: str) -> int:
    with pytest.raises(SystemExit) as exit_info:
        ops_main([*args])
    code = exit_info.value.code
    assert isinstance(code, int)
    return code


def test_rollout_under_steady_load_fails_no_request(topology: TestTopology) -> None:
    before = _running_images(topology)
    assert set(before.values()) == {topology.images.service}
    with BackgroundLoad(topology.url, HEALTH, concurrency=6, resend=True) as load:
        load.wait_for(200)
        at_start = load.total
        topology.runner.rollout(topology.images.variant)
        during = load.total - at_start
        load.wait_for(max(MIN_REQUESTS, load.total + 200))
    result = load.tally
    print(
        f"rollout under load: {result.total} requests, {during} during the rollout, "
        f"{len(result.failures)} failed, {len(result.resent)} resent"
    )
    assert result.total >= MIN_REQUESTS
    assert during > 0, "the load ran while the rollout did"
    assert result.failures == []
    # The proxy was never reloaded, so no kept-alive connection was closed under a client.
    assert result.resent == []
    after = _running_images(topology)
    assert set(after.values()) == {topology.images.variant}
    assert not set(after) & set(before), "every old task was replaced"
    assert topology.runner.update_status("api")["state"] == "completed"


def test_broken_image_is_rolled_back_by_the_engine(
    topology: TestTopology, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _running_images(topology)
    with BackgroundLoad(topology.url, HEALTH, concurrency=4, resend=True) as load:
        load.wait_for(50)
        code = _ops("local", "--env", "test", "rollout", "--image", topology.images.broken)
        at_end = load.total
        load.wait_for(at_end + 50)
    assert code == 1
    error = capsys.readouterr().err
    assert "never took traffic" in error
    assert "rollback completed" in error, error  # the engine's own verdict
    assert "unhealthy" in error  # the reason: Docker's health check
    assert "serving nothing" in error  # and what the container said
    assert load.tally.failures == []
    assert load.tally.resent == []
    # The same tasks serve: the broken ones never replaced a healthy one.
    assert _running_images(topology) == before

    assert _ops("status", "--stack", "test", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["last_update"]["state"] == "rollback_completed"
    assert "rollback" in report["last_update"]["message"]
    print(f"broken image under load: {load.tally.total} requests, {load.failed} failed")


def test_rollback_is_one_command(topology: TestTopology) -> None:
    topology.runner.rollout(topology.images.variant)
    assert set(_running_images(topology).values()) == {topology.images.variant}
    with BackgroundLoad(topology.url, HEALTH, concurrency=4, resend=True) as load:
        assert _ops("rollback", "--stack", "test") == 0
        load.wait_for(load.total + 50)
    assert load.tally.failures == []
    assert set(_running_images(topology).values()) == {topology.images.service}
    history = topology.runner.state.history()
    assert history.current_image == topology.images.service
    assert history.previous_image == topology.images.variant


def test_rollback_with_no_history_says_so(topology: TestTopology) -> None:
    runner = topology.runner
    state_file = runner.state.directory / "history.json"
    saved = state_file.read_text()
    state_file.unlink()
    try:
        with pytest.raises(RolloutError, match="no previous image"):
            runner.rollback()
    finally:
        state_file.write_text(saved)
