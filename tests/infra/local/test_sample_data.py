"""`make local` without keys: each source is the topology's own stand-in, whose sample
listings answer searches (marked as such); a key turns its source live again."""

from __future__ import annotations

from dataclasses import replace

import docker
import httpx
import pytest

from infra.local.runner import LocalRunner
from infra.standins import JSEARCH_KEY, THEIRSTACK_KEY
from tests.support.local_topology import TestTopology

pytestmark = pytest.mark.docker


def _env(client: docker.DockerClient, name: str) -> dict[str, str]:
    spec = client.services.get(name).attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
    return dict(item.split("=", 1) for item in spec.get("Env") or [])


def _search(topology: TestTopology, source: str, title: str) -> httpx.Response:
    return httpx.post(
        f"{topology.url}/api/jobs/{source}",
        json={"jobTitle": title, "country": "US"},
        timeout=60,
    )


def test_keyless_sources_answer_from_their_stand_ins_sample(
    topology: TestTopology, docker_client: docker.DockerClient
) -> None:
    topology.control_fakes(listings="sample")
    prefix = topology.description.prefix
    env = _env(docker_client, f"{prefix}-api")
    assert env["SAMPLE_SOURCES"] == "jsearch,theirstack"
    assert env["JSEARCH_BASE_URL"] == "http://standin-jsearch:9100"
    assert env["THEIRSTACK_BASE_URL"] == "http://standin-theirstack:9100"
    for source in ("jsearch", "theirstack"):
        standin = docker_client.services.get(f"{prefix}-standin-{source}").attrs
        # Reached on the overlay only: nothing published, not even the control port.
        assert not standin["Spec"]["EndpointSpec"].get("Ports")
        assert standin["Spec"]["EndpointSpec"]["Mode"] == "dnsrr"
        engineers = _search(topology, source, "software engineer")
        nurses = _search(topology, source, "nurse")
        for response in (engineers, nurses):
            assert response.status_code == 200, response.text
            assert response.headers["X-Sample-Data"] == "true"
            assert response.json()["jobs"]
        assert {job["country"] for job in engineers.json()["jobs"]} == {"US"}
        engineer_ids = {job["id"] for job in engineers.json()["jobs"]}
        assert not engineer_ids & {job["id"] for job in nurses.json()["jobs"]}
    ready = httpx.get(f"{topology.url}/ready", timeout=10).json()
    assert ready["status"] == "ready"
    assert {name: s["data"] for name, s in ready["checks"]["sources"].items()} == {
        "jsearch": "sample",
        "theirstack": "sample",
    }


def test_a_key_turns_its_source_live_and_its_stand_in_away(
    topology: TestTopology, docker_client: docker.DockerClient
) -> None:
    original = topology.runner
    live = LocalRunner(
        docker_client,
        original.state,
        replace(original.config, sample_sources=("theirstack",)),
        say=original.say,
    )
    prefix = topology.description.prefix
    try:
        original.state.set_api_keys(
            {"RAPID_API_KEY": "a-key-from-dotenv-0123456789", "THEIRSTACK_API_KEY": THEIRSTACK_KEY}
        )
        live.up(topology.images.service)
        services = {service.name for service in docker_client.services.list()}
        assert f"{prefix}-standin-jsearch" not in services
        assert f"{prefix}-standin-theirstack" in services
        env = _env(docker_client, f"{prefix}-api")
        assert env["SAMPLE_SOURCES"] == "theirstack"
        # The real API's default URL: the service's own, as no setting overrides it.
        assert "JSEARCH_BASE_URL" not in env
        ready = httpx.get(f"{topology.url}/ready", timeout=10).json()
        assert ready["checks"]["sources"]["jsearch"]["data"] == "live"
        assert ready["checks"]["sources"]["theirstack"]["data"] == "sample"
        answer = _search(topology, "theirstack", "nurse")
        assert answer.headers["X-Sample-Data"] == "true"
    finally:
        original.state.set_api_keys(
            {"RAPID_API_KEY": JSEARCH_KEY, "THEIRSTACK_API_KEY": THEIRSTACK_KEY}
        )
        original.up(topology.images.service)
    assert f"{prefix}-standin-jsearch" in {s.name for s in docker_client.services.list()}
