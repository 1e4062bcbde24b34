"""What a local instance's config makes of its sample sources, before any engine call:
the stand-ins in the description, and the keys they accept in the service's secrets."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import docker

from infra.local.runner import LocalRunner
from infra.local.state import LocalConfig, LocalState
from infra.standins import JSEARCH_KEY, THEIRSTACK_KEY
from infra.topology import Images


def _runner(tmp_path: Path, config: LocalConfig) -> LocalRunner:
    state = LocalState("test", root=tmp_path)
    state.prepare()
    state.save_config(config)
    # Read back: what `ops local` commands after `up` see.
    return LocalRunner(cast(docker.DockerClient, None), state, state.load_config())


def test_stand_in_sources_get_the_sample_keys_and_given_keys_win(tmp_path: Path) -> None:
    config = LocalConfig(
        environment="test",
        images=Images(service="", standin="standins:1"),
        sample_sources=("jsearch", "theirstack"),
    )
    runner = _runner(tmp_path, config)
    assert runner.config.sample_sources == ("jsearch", "theirstack")
    values = runner.secret_values()
    assert values["RAPID_API_KEY"] == JSEARCH_KEY
    assert values["THEIRSTACK_API_KEY"] == THEIRSTACK_KEY
    runner.state.set_api_keys({"RAPID_API_KEY": "rotated-key-0123456789"})
    assert runner.secret_values()["RAPID_API_KEY"] == "rotated-key-0123456789"
    roles = {service.role for service in runner.topology("api:1").services}
    assert {"standin-jsearch", "standin-theirstack"} <= roles


def test_a_live_source_gets_no_sample_key_and_no_stand_in(tmp_path: Path) -> None:
    config = LocalConfig(
        environment="test",
        images=Images(service="", standin="standins:1"),
        sample_sources=("theirstack",),
    )
    runner = _runner(tmp_path, config)
    runner.state.set_api_keys({"RAPID_API_KEY": "a-real-key-from-dotenv"})
    values = runner.secret_values()
    assert values["RAPID_API_KEY"] == "a-real-key-from-dotenv"
    assert values["THEIRSTACK_API_KEY"] == THEIRSTACK_KEY
    topology = runner.topology("api:1")
    assert "standin-jsearch" not in {service.role for service in topology.services}
    assert "JSEARCH_BASE_URL" not in topology.api.env
    assert topology.api.env["SAMPLE_SOURCES"] == "theirstack"
