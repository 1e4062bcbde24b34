"""`up` is idempotent; `down` keeps the database unless asked; status tells the truth."""

from __future__ import annotations

import json
import time

import docker
import psycopg
import pytest

from infra.ops.cli import main as ops_main
from tests.support.local_topology import TestTopology

pytestmark = pytest.mark.docker


def _ids(docker_client: docker.DockerClient, environment: str) -> dict[str, str]:
    """Every service (with its spec version) and running container of an environment."""
    labels: dict[str, str | list[str] | bool] = {
        "label": [f"org.jobsearch.environment={environment}"]
    }
    found = {
        f"service {service.name}": f"{service.id}@{service.version}"
        for service in docker_client.services.list(filters=labels)
    }
    for container in docker_client.containers.list(filters=labels):
        found[f"container {container.name}"] = container.id or ""
    return found


def _admin_url(topology: TestTopology) -> str:
    password = topology.runner.state.secrets()["POSTGRES_PASSWORD"]
    port = topology.runner.config.postgres_port
    return f"postgresql://postgres:{password}@127.0.0.1:{port}/jobsearch"


def test_up_twice_changes_nothing_and_prints_the_url(
    topology: TestTopology,
    docker_client: docker.DockerClient,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = _ids(docker_client, "test")
    capsys.readouterr()
    # The whole command, image build included: an unchanged tree builds the same image.
    with pytest.raises(SystemExit) as exit_info:
        ops_main(["local", "--env", "test", "up"])
    assert exit_info.value.code == 0
    said = capsys.readouterr().out.splitlines()
    # The URL, where each source's answers come from, and a search to try.
    assert said[-4:-1] == [
        f"ready: {topology.url}",
        "  jsearch: sample data (stand-in)",
        "  theirstack: sample data (stand-in)",
    ]
    assert said[-1].startswith(f"try: curl -si -X POST {topology.url}/api/jobs/jsearch ")
    assert _ids(docker_client, "test") == before
    assert not any(line.startswith(("creating", "updating", "rolling")) for line in said), said


def test_status_reports_every_task_running(
    topology: TestTopology, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        ops_main(["status", "--stack", "test", "--json"])
    assert exit_info.value.code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] != "fail"
    assert report["url"] == topology.url
    roles = sorted(item["role"] for item in report["tasks"])
    assert roles == [
        "api", "api", "postgres", "proxy", "redis", "standin-jsearch", "standin-theirstack",
    ]  # fmt: skip
    assert {item["state"] for item in report["tasks"]} == {"running"}


def test_down_keeps_the_database_volume_unless_asked(
    topology: TestTopology, docker_client: docker.DockerClient
) -> None:
    runner = topology.runner
    volume = f"{topology.description.prefix}-pgdata"
    marker = f"kept-{time.time_ns()}"
    with psycopg.connect(_admin_url(topology), autocommit=True) as connection:
        connection.execute("create table if not exists down_marker (value text)")
        connection.execute("insert into down_marker values (%s)", (marker,))

    runner.down()
    assert _ids(docker_client, "test") == {}
    assert docker_client.volumes.get(volume) is not None

    runner.up(topology.images.service)
    with psycopg.connect(_admin_url(topology)) as connection:
        rows = connection.execute("select value from down_marker").fetchall()
    assert (marker,) in rows

    runner.down(volumes=True)
    with pytest.raises(docker.errors.NotFound):
        docker_client.volumes.get(volume)

    runner.up(topology.images.service)
    with psycopg.connect(_admin_url(topology)) as connection:
        exists = connection.execute("select to_regclass('down_marker')").fetchone()
    assert exists == (None,)
