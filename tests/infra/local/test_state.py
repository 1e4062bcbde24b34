"""The local state directory: private secrets, remembered config, rollback history."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from infra.local.state import LocalConfig, LocalState, StateError


def test_passwords_are_generated_once_and_private(tmp_path: Path) -> None:
    state = LocalState("test", root=tmp_path)
    state.prepare()
    first = state.secrets()
    assert len(first["POSTGRES_PASSWORD"]) >= 24
    assert first["POSTGRES_PASSWORD"] != first["APP_DB_PASSWORD"]
    assert state.secrets() == first
    path = state.directory / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.directory.stat().st_mode) == 0o700


def test_api_keys_are_replaced_whole_and_survive_a_new_database(tmp_path: Path) -> None:
    state = LocalState("test", root=tmp_path)
    state.prepare()
    state.set_api_keys({"RAPID_API_KEY": "a", "THEIRSTACK_API_KEY": "b", "UNRELATED": "x"})
    state.set_api_keys({"RAPID_API_KEY": "c"})
    secrets = state.secrets()
    assert secrets["RAPID_API_KEY"] == "c"
    assert "THEIRSTACK_API_KEY" not in secrets  # left out: that source is off
    assert "UNRELATED" not in secrets
    old_password = secrets["POSTGRES_PASSWORD"]
    state.forget_database_passwords()
    renewed = state.secrets()
    assert renewed["RAPID_API_KEY"] == "c"
    assert renewed["POSTGRES_PASSWORD"] != old_password


def test_config_round_trips_and_bad_files_name_the_problem(tmp_path: Path) -> None:
    state = LocalState("test", root=tmp_path)
    with pytest.raises(StateError, match="ops local --env test up"):
        state.load_config()
    state.prepare()
    config = LocalConfig(environment="test", http_port=18080, settings={"LOG_LEVEL": "DEBUG"})
    state.save_config(config)
    assert state.load_config() == config
    path = state.directory / "config.json"
    path.write_text(json.dumps({"environment": "test", "http_prot": 1}))
    with pytest.raises(StateError, match="http_prot"):
        state.load_config()
    path.write_text("{not json")
    with pytest.raises(StateError, match=r"config\.json: not valid JSON"):
        state.load_config()


def test_history_remembers_the_image_before_the_current_one(tmp_path: Path) -> None:
    state = LocalState("test", root=tmp_path)
    state.prepare()
    assert state.history().previous_image is None
    state.record_rollout("sha256:a")
    state.record_rollout("sha256:a")  # the same image again is no rollout
    assert state.history().previous_image is None
    state.record_rollout("sha256:b")
    history = state.history()
    assert (history.current_image, history.previous_image) == ("sha256:b", "sha256:a")
