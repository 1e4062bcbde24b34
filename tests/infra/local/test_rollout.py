"""Rollouts under load, a rollout of a broken image, and rollback in one command."""

from __future__ import annotations

import docker
import pytest

from bench.load import BackgroundLoad, Call
from infra.local.runner import RolloutError
from infra.ops.cli import main as ops_main
from tests.support.local_topology import TestTopology

pytestmark = pytest.mark.docker

MIN_REQUESTS = 1_000
HEALTH = [Call("GET", "/health")]


def _running_images(topology: TestTopology) -> dict[str, str]:
    return {
        container.name or "": str(container.attrs["Image"])
        for container in topology.runner.api_containers()
        if container.status == "running"
    }


def _ops(*args: str) -> int:
    with pytest.raises(SystemExit) as exit_info:
        ops_main(["local", "--env", "test", *args])
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
        f"rollout under load: {result.total} requests, {len(result.failures)} failed, "
        f"{len(result.resent)} resent after Caddy closed an idle kept-alive connection"
    )
    assert result.total >= MIN_REQUESTS
    assert during > 0, "the load ran while the rollout did"
    assert result.failures == []
    # One reload closes each idle client connection once, at most.
    assert len(result.resent) <= load.concurrency
    after = _running_images(topology)
    assert set(after.values()) == {topology.images.variant}
    assert not set(after) & set(before), "the old generation is gone"
    caddyfile = topology.runner.state.caddyfile.read_text()
    for name in after:
        assert name.removeprefix(f"{topology.description.prefix}-") + ":8000" in caddyfile
    for name in before:
        assert name.removeprefix(f"{topology.description.prefix}-") + ":" not in caddyfile


def test_unhealthy_image_never_takes_traffic(
    topology: TestTopology, docker_client: docker.DockerClient, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {container.id for container in topology.runner.api_containers()}
    caddyfile = topology.runner.state.caddyfile.read_text()
    with BackgroundLoad(topology.url, HEALTH, concurrency=4, resend=True) as load:
        load.wait_for(50)
        code = _ops("rollout", "--image", topology.images.broken)
        at_end = load.total
        load.wait_for(at_end + 50)
    assert code == 1
    error = capsys.readouterr().err
    assert "never took traffic" in error
    assert "health check exited" in error, error  # the reason: Docker's last check
    assert "serving nothing" in error  # and what the container said
    assert "2 replicas of the previous image keep serving" in error
    assert load.tally.failures == []
    assert {container.id for container in topology.runner.api_containers()} == before
    assert topology.runner.state.caddyfile.read_text() == caddyfile
    leftovers = docker_client.containers.list(
        all=True, filters={"ancestor": topology.images.broken}
    )
    assert leftovers == []


def test_rollback_is_one_command(topology: TestTopology) -> None:
    topology.runner.rollout(topology.images.variant)
    assert set(_running_images(topology).values()) == {topology.images.variant}
    with BackgroundLoad(topology.url, HEALTH, concurrency=4, resend=True) as load:
        assert _ops("rollback") == 0
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
