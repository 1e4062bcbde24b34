"""The topology's stand-ins: present only for the sources named, locked down like the
rest, and the service pointed at them with SAMPLE_SOURCES."""

from __future__ import annotations

import pytest

from infra.swarm import ObjectRef, engine_spec
from infra.topology import Images, TopologySpec, describe

IMAGES = Images(service="api:1", standin="standins:1")


def test_no_sample_sources_means_no_stand_ins_and_real_urls() -> None:
    topology = describe(TopologySpec(environment="local", images=IMAGES, local_datastores=True))
    assert {service.role for service in topology.services} == {"proxy", "api", "redis", "postgres"}
    env = topology.api.env
    assert "SAMPLE_SOURCES" not in env
    assert "JSEARCH_BASE_URL" not in env
    assert "THEIRSTACK_BASE_URL" not in env


def test_each_sample_source_gets_its_stand_in_and_the_service_points_at_it() -> None:
    spec = TopologySpec(
        environment="local",
        images=IMAGES,
        sample_sources=("theirstack",),
        settings={"THEIRSTACK_BASE_URL": "https://api.theirstack.com"},
    )
    topology = describe(spec)
    standin = topology.service("standin-theirstack")
    with pytest.raises(KeyError):
        topology.service("standin-jsearch")
    env = topology.api.env
    assert env["SAMPLE_SOURCES"] == "theirstack"
    # The stand-in wins over a base URL the settings carry.
    assert env["THEIRSTACK_BASE_URL"] == "http://standin-theirstack:9100"
    assert "JSEARCH_BASE_URL" not in env
    assert standin.name == "jobsearch-local-standin-theirstack"
    assert standin.aliases == ("standin-theirstack",)
    assert standin.image == "standins:1"
    assert standin.command is not None
    assert standin.command[:3] == ("python", "-m", "infra.standins")
    assert standin.user == "10001:10001"
    assert standin.read_only
    assert standin.cap_drop == ("ALL",)
    assert not standin.ports
    assert not standin.secrets
    assert standin.limits.memory_mb <= 128
    assert standin.labels["org.jobsearch.role"] == "standin-theirstack"
    engine = engine_spec(standin, topology.network, {}, {})
    assert engine["EndpointSpec"]["Mode"] == "dnsrr"
    assert "/_control" in " ".join(engine["TaskTemplate"]["ContainerSpec"]["Healthcheck"]["Test"])


def test_sample_sources_need_the_stand_ins_image_and_known_names() -> None:
    with pytest.raises(ValueError, match=r"images\.standin"):
        describe(
            TopologySpec(
                environment="local", images=Images(service="api:1"), sample_sources=("jsearch",)
            )
        )
    with pytest.raises(ValueError, match="unknown sources indeed"):
        describe(
            TopologySpec(environment="local", images=IMAGES, sample_sources=("indeed",))  # type: ignore[arg-type]
        )


def test_object_refs_are_not_needed_by_a_stand_in() -> None:
    topology = describe(
        TopologySpec(environment="test", images=IMAGES, sample_sources=("jsearch",))
    )
    refs = {"RAPID_API_KEY": ObjectRef("id", "name")}
    engine = engine_spec(topology.service("standin-jsearch"), topology.network, refs, {})
    assert engine["TaskTemplate"]["ContainerSpec"].get("Secrets", []) == []
