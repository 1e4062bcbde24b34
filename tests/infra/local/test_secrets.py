"""Secrets are Docker secrets: never in `docker inspect`, rotated with a rolling update."""

from __future__ import annotations

import json
import uuid

import docker
import pytest
import testinfra

from harness.background import BackgroundLoad
from harness.load import Call
from infra.standins import JSEARCH_KEY, THEIRSTACK_KEY
from tests.support.local_topology import TestTopology

pytestmark = pytest.mark.docker


def test_docker_inspect_shows_no_secret_value(
    topology: TestTopology, docker_client: docker.DockerClient
) -> None:
    values = [value for value in topology.runner.secret_values().values() if len(value) >= 8]
    assert len(values) >= 4, "the API keys, the database URL and the Postgres password"
    labels: dict[str, str | list[str] | bool] = {"label": ["org.jobsearch.environment=test"]}
    inspected = [service.attrs for service in docker_client.services.list(filters=labels)]
    inspected += [c.attrs for c in docker_client.containers.list(all=True, filters=labels)]
    assert len(inspected) >= 5
    for document in inspected:
        text = json.dumps(document)
        for value in values:
            assert value not in text, f"a secret shows in `docker inspect` of {document['ID']}"


def _searches() -> list[Call]:
    # Titles never searched before: each one reaches the upstream with the key in use.
    return [
        Call("POST", "/api/jobs/jsearch", {"jobTitle": f"rotation {uuid.uuid4().hex[:10]}"})
        for _ in range(400)
    ] + [Call("GET", "/health")]


def test_rotation_is_a_new_secret_and_a_rolling_update(
    topology: TestTopology, docker_client: docker.DockerClient
) -> None:
    runner = topology.runner
    new_key = f"rotated-{uuid.uuid4().hex}"
    # The provider keeps the old and the new key valid while the client rotates.
    topology.control_fakes(accept_keys=[new_key])
    old_secrets = {secret.name for secret in docker_client.secrets.list()}
    try:
        with BackgroundLoad(topology.url, _searches(), concurrency=4, resend=True) as load:
            load.wait_for(50)
            runner.rotate_secrets({"RAPID_API_KEY": new_key, "THEIRSTACK_API_KEY": THEIRSTACK_KEY})
            load.wait_for(load.total + 50)
        tally = load.tally
        print(f"rotation under load: {tally.total} requests, {len(tally.failures)} failed")
        assert tally.failures == []
        assert tally.resent == []
        for container in runner.containers("api"):
            host = testinfra.get_host(f"docker://{container.name}")
            assert host.file("/run/secrets/RAPID_API_KEY").content_string == new_key
        now = {secret.name for secret in docker_client.secrets.list()}
        retired = [name for name in old_secrets - now if "rapid-api-key" in name]
        assert retired, "the old key's secret is gone once no task mounts it"
    finally:
        runner.rotate_secrets({"RAPID_API_KEY": JSEARCH_KEY, "THEIRSTACK_API_KEY": THEIRSTACK_KEY})
        topology.control_fakes(accept_keys=[])
