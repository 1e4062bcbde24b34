"""Settings: one list (.env.example and the README table are generated from it), validated."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from pydantic import ValidationError

from infra.generated import GENERATED, Generated, stale
from jobsearch import settings as settings_module
from jobsearch.settings import Settings, describe_validation_error, settings_from
from jobsearch.settings_reference import DEVELOPMENT_VALUES, render_env_example, settings_table

ROOT = Path(__file__).resolve().parents[2]


def _setting_names() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


def test_env_example_and_readme_table_are_generated_from_the_settings() -> None:
    """Both are rendered from Settings' fields (make generate): no copy to keep in step."""
    env_example = Generated(Path(".env.example"), render_env_example)
    readme = next(item for item in GENERATED if item.path == Path("README.md"))
    assert stale([env_example, readme]) == []


def test_env_example_documents_every_setting_and_pins_no_default() -> None:
    text = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^(?:# )?([A-Z_]+)=", text, re.M))
    assert documented == _setting_names()
    set_lines = set(re.findall(r"^([A-Z_]+)=", text, re.M))
    assert set_lines == {name.upper() for name in DEVELOPMENT_VALUES}


def test_readme_table_states_each_default_and_secret() -> None:
    table = settings_table()
    ttl = Settings.model_fields["cache_ttl_minutes"].default
    assert f"| `CACHE_TTL_MINUTES` | {ttl} | no |" in table
    assert "| `DATABASE_URL` | unset | yes |" in table
    assert "| `CORS_ORIGINS` | empty | no |" in table


def test_env_example_copied_to_dot_env_starts_the_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cp .env.example .env` is the documented first step: it sets no default by itself."""
    for name in _setting_names():
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.cache_ttl_minutes == Settings.model_fields["cache_ttl_minutes"].default
    assert settings.redis_url is None
    assert settings.database_url is None
    assert settings.sentry_dsn is None
    assert settings.rapid_api_key is None, "a blank key must turn the source off"
    assert settings.cors_origins == ["http://localhost:3000"]


def test_uncommenting_a_blank_line_still_means_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in _setting_names():
        monkeypatch.delenv(name, raising=False)
    uncommented = re.sub(r"^# ([A-Z_]+=)", r"\1", (ROOT / ".env.example").read_text(), flags=re.M)
    (tmp_path / ".env").write_text(uncommented)
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.rapid_api_key is None
    assert settings.cache_ttl_minutes == Settings.model_fields["cache_ttl_minutes"].default


def test_every_env_example_entry_has_a_comment_above_it() -> None:
    lines = (ROOT / ".env.example").read_text().splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^(# )?[A-Z_]+=", line):
            above = lines[index - 1]
            assert above.startswith("#"), f"{line} has no description"
            assert not re.match(r"^# [A-Z_]+=", above), f"{line} has no description"


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
        ({"frontend_api_keys": "hunter2"}, "FRONTEND_API_KEYS"),
        ({"frontend_api_keys": "hunter2-hunter2-hunter2 with spaces"}, "FRONTEND_API_KEYS"),
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


def test_frontend_api_keys_are_a_comma_separated_list_and_each_is_redacted() -> None:
    old, new = "frontend-old-0123456789abcdef", "frontend-new-fedcba9876543210"
    settings = Settings.model_validate({"frontend_api_keys": f" {old} ,{new},"})
    assert settings.frontend_keys == (old, new)
    assert old in settings.secret_values
    assert new in settings.secret_values
    assert Settings.model_validate({"frontend_api_keys": " , "}).frontend_keys == ()
    assert Settings.model_validate({}).frontend_keys == ()


def test_frontend_api_keys_are_read_from_a_secret_file(
    tmp_path: Path, no_setting_in_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets_dir = _write_secrets(
        tmp_path / "secrets", {"FRONTEND_API_KEYS": "frontend-file-0123456789abcdef"}
    )
    monkeypatch.setattr(settings_module, "SECRETS_DIR", secrets_dir)
    assert Settings().frontend_keys == ("frontend-file-0123456789abcdef",)


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


# Secret files, as Docker mounts them: /run/secrets/<VARIABLE>, usually with a trailing newline.
SECRET_NAMES = ("RAPID_API_KEY", "THEIRSTACK_API_KEY", "DATABASE_URL", "SENTRY_DSN")


@pytest.fixture
def no_setting_in_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No setting in the environment and no .env: a working directory of the test's own."""
    for name in _setting_names():
        monkeypatch.delenv(name, raising=False)
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return workdir


def _write_secrets(directory: Path, values: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, value in values.items():
        path = directory / name
        path.write_text(value + "\n")
        path.chmod(0o400)
    return directory


def test_secrets_are_read_from_files_without_their_trailing_newline(
    tmp_path: Path, no_setting_in_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets_dir = _write_secrets(
        tmp_path / "secrets",
        {
            "RAPID_API_KEY": "rapid-from-file",
            "THEIRSTACK_API_KEY": "theirstack-from-file",
            "DATABASE_URL": "postgresql://app:s3cret@db.example.com:5432/postgres",
            "SENTRY_DSN": "https://public@sentry.example.com/1",
        },
    )
    # The default directory (/run/secrets in a container), pointed here.
    monkeypatch.setattr(settings_module, "SECRETS_DIR", secrets_dir)
    settings = Settings()
    assert settings.rapid_api_key is not None
    assert settings.rapid_api_key.get_secret_value() == "rapid-from-file"
    assert settings.theirstack_api_key is not None
    assert settings.theirstack_api_key.get_secret_value() == "theirstack-from-file"
    assert settings.database_url is not None
    assert settings.database_url.get_secret_value() == (
        "postgresql://app:s3cret@db.example.com:5432/postgres"
    )
    assert settings.sentry_dsn is not None
    assert settings.sentry_dsn.get_secret_value() == "https://public@sentry.example.com/1"


def test_environment_and_dot_env_override_a_secret_file(
    tmp_path: Path, no_setting_in_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets_dir = _write_secrets(
        tmp_path / "secrets", {"RAPID_API_KEY": "from-file", "SENTRY_DSN": "https://f@s.example/1"}
    )
    monkeypatch.setattr(settings_module, "SECRETS_DIR", secrets_dir)
    monkeypatch.setenv("RAPID_API_KEY", "from-env")
    (no_setting_in_env / ".env").write_text("SENTRY_DSN=https://dotenv@s.example/2\n")
    settings = Settings()
    assert settings.rapid_api_key is not None
    assert settings.rapid_api_key.get_secret_value() == "from-env"
    assert settings.sentry_dsn is not None
    assert settings.sentry_dsn.get_secret_value() == "https://dotenv@s.example/2"


def test_a_missing_secrets_directory_is_silent(
    tmp_path: Path, no_setting_in_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-such-dir"
    monkeypatch.setattr(settings_module, "SECRETS_DIR", missing)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Settings().rapid_api_key is None


def test_a_bad_database_url_in_a_secret_file_is_named_and_not_echoed(
    tmp_path: Path, no_setting_in_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets_dir = _write_secrets(
        tmp_path / "secrets", {"DATABASE_URL": "mysql://app:hunter2@db.example.com/x"}
    )
    monkeypatch.setattr(settings_module, "SECRETS_DIR", secrets_dir)
    with pytest.raises(ValidationError) as caught:
        Settings()
    line = describe_validation_error(caught.value)
    assert "DATABASE_URL" in line
    assert "hunter2" not in line
    assert "hunter2" not in str(caught.value)


def test_settings_from_ignores_secret_files(
    tmp_path: Path, no_setting_in_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = {name: f"https://{name.lower()}@example.com/1" for name in SECRET_NAMES}
    values["DATABASE_URL"] = "postgresql://app:pw@db.example.com/postgres"
    secrets_dir = _write_secrets(tmp_path / "secrets", values)
    monkeypatch.setattr(settings_module, "SECRETS_DIR", secrets_dir)
    assert Settings().rapid_api_key is not None, "the directory is read by Settings"
    settings = settings_from({"APP_ENV": "staging"})
    assert settings.rapid_api_key is None
    assert settings.theirstack_api_key is None
    assert settings.database_url is None
    assert settings.sentry_dsn is None
