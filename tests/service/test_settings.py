"""Settings: one list for the code, .env.example and the README, and strict validation."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from jobsearch.settings import Settings, describe_validation_error, settings_from

ROOT = Path(__file__).resolve().parents[2]


def _setting_names() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


def test_env_example_documents_every_setting_and_nothing_else() -> None:
    documented = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert documented == _setting_names()


def test_env_example_copied_to_dot_env_starts_the_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cp .env.example .env` is the documented first step: its blank `KEY=` lines mean unset."""
    for name in _setting_names():
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.cache_ttl_minutes == 60
    assert settings.redis_url is None
    assert settings.database_url is None
    assert settings.sentry_dsn is None
    assert settings.rapid_api_key is None, "a blank key must turn the source off"
    assert settings.cors_origins == ["http://localhost:3000"]


def test_every_env_example_entry_has_a_comment_above_it() -> None:
    lines = (ROOT / ".env.example").read_text().splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^[A-Z_]+=", line):
            assert lines[index - 1].startswith("#"), f"{line} has no description"


def test_readme_settings_table_matches_the_settings() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    in_table = set(re.findall(r"^\| `([A-Z_]+)` \|", section, re.M))
    assert in_table == _setting_names()


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"cache_ttl_minutes": "soon"}, "CACHE_TTL_MINUTES"),
        ({"upstream_timeout_seconds": "0"}, "UPSTREAM_TIMEOUT_SECONDS"),
        ({"rate_limit": "lots"}, "RATE_LIMIT"),
        ({"app_env": "prod"}, "APP_ENV"),
        ({"database_url": "mysql://user:hunter2@db/x"}, "DATABASE_URL"),
        ({"cors_origins": "app.example.com"}, "CORS_ORIGINS"),
        ({"port": "70000"}, "PORT"),
    ],
)
def test_invalid_setting_is_named_and_its_value_is_not_echoed(
    values: dict[str, str], named: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings.model_validate(values)
    line = describe_validation_error(caught.value)
    assert named in line
    assert "\n" not in line
    assert "hunter2" not in line


def test_wildcard_cors_is_refused_in_production_only() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings.model_validate({"app_env": "production", "cors_origins": "*"})
    assert "CORS_ORIGINS" in describe_validation_error(caught.value)
    assert Settings.model_validate({"app_env": "staging", "cors_origins": "*"}).cors_origins == [
        "*"
    ]


def test_cors_origins_are_split_on_commas() -> None:
    settings = Settings.model_validate(
        {"cors_origins": "https://a.example.com/, https://b.example.com"}
    )
    assert settings.cors_origins == ["https://a.example.com", "https://b.example.com"]


def test_empty_keys_mean_the_source_is_off() -> None:
    settings = Settings.model_validate({"rapid_api_key": "", "theirstack_api_key": "  "})
    assert settings.rapid_api_key is None
    assert settings.theirstack_api_key is None


def test_cli_stops_with_one_line_naming_the_bad_setting(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("jobsearch-api")
    result = subprocess.run(
        [str(script)],
        env={"PATH": "/usr/bin:/bin", "CACHE_TTL_MINUTES": "-5", "RATE_LIMIT": "x"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "CACHE_TTL_MINUTES" in lines[0]
    assert "RATE_LIMIT" in lines[0]


def test_settings_from_reads_the_given_values_alone_and_blank_means_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a stack's check passes: the deploying machine's environment and .env stay out.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORKERS", "7")
    (tmp_path / ".env").write_text("PORT=1234\n")
    settings = settings_from({"REDIS_URL": "", "LOG_LEVEL": "", "APP_ENV": "staging"})
    assert settings.app_env == "staging"
    assert settings.redis_url is None
    assert settings.log_level == Settings.model_fields["log_level"].default
    assert settings.workers == Settings.model_fields["workers"].default
    assert settings.port == Settings.model_fields["port"].default
