"""The toolchain's small promises: floors with the APIs used, a lock target that brings
its own uv, an audit of the locks, locks and npm pins that name no registry, and docs
that build the image from the right context."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOCKS = ("requirements.lock", "requirements-dev.lock")


def _pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _make_dry_run(target: str, **env: str) -> str:
    result = subprocess.run(
        ["make", "--dry-run", "--always-make", target],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def test_the_limits_floor_has_the_apis_the_rate_limiter_uses() -> None:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    (limits,) = [d for d in project["dependencies"] if re.match(r"limits\b", d)]
    floor = tuple(int(part) for part in limits.split(">=")[1].split(",")[0].split("."))
    # SlidingWindowCounterRateLimiter (4.1) and implementation="redispy" (4.2).
    assert floor >= (4, 2)


def _locked(lock: str) -> dict[str, str]:
    pins = re.findall(r"^([a-z0-9][a-z0-9._-]*)==([^\s;]+)", (ROOT / lock).read_text(), re.M)
    return dict(pins)


def test_make_lock_uses_the_uv_the_dev_lock_installs() -> None:
    assert "uv" in _locked("requirements-dev.lock")
    commands = [line for line in _make_dry_run("lock").splitlines() if "pip compile" in line]
    assert len(commands) == 2
    assert all(line.startswith(".venv/bin/uv pip compile") for line in commands), commands
    assert all("--generate-hashes" in line for line in commands)


def test_make_audit_checks_both_locks_with_hashes() -> None:
    assert "pip-audit" in _locked("requirements-dev.lock")
    (command,) = [line for line in _make_dry_run("audit").splitlines() if "pip-audit" in line]
    for lock in LOCKS:
        assert f"-r {lock}" in command
    assert "--strict" in command
    assert "--require-hashes" in command


def test_lint_runs_the_audit_in_ci() -> None:
    lint = _make_dry_run("lint")
    (line,) = [line for line in lint.splitlines() if "GITHUB_ACTIONS" in line]
    assert "audit" in line
    # Elsewhere it says why it did not run, instead of passing silently.
    assert "skipped" in line


@pytest.mark.parametrize("lock", LOCKS)
def test_a_lock_names_no_registry(lock: str) -> None:
    text = (ROOT / lock).read_text()
    assert "://" not in text
    assert "index-url" not in text
    assert "--hash=sha256:" in text


def test_the_npm_pins_name_no_registry() -> None:
    for path in ROOT.glob("tools/*/package*.json"):
        text = path.read_text()
        assert '"resolved"' not in text, path
        assert "registry" not in text, path


def test_docs_build_the_image_from_the_repository_root() -> None:
    build = re.compile(r"docker build\b[^\n`]*")
    for path in [*ROOT.glob("docs/*.md"), *ROOT.glob("runbooks/*.md"), ROOT / "README.md"]:
        for command in build.findall(path.read_text()):
            assert re.search(r"(--file|-f) service/Dockerfile\b", command), (path.name, command)
            assert command.rstrip().endswith(" ."), (path.name, command)
