"""actionlint and zizmor pass on the workflows, and would fail on a bad one."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.workflows.rules import ROOT, WORKFLOWS

BIN = Path(sys.executable).parent
ACTIONLINT = BIN / "actionlint"
ZIZMOR = BIN / "zizmor"


def run(*command: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_actionlint_is_clean() -> None:
    result = run(ACTIONLINT, "-no-color")

    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_is_clean() -> None:
    result = run(ZIZMOR, "--offline", "--min-severity", "low", ".github/workflows")

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def broken_repository(tmp_path: Path) -> Path:
    """A copy of the workflows, to break."""
    shutil.copytree(WORKFLOWS, tmp_path / ".github" / "workflows")
    run("git", "init", "-q", ".", cwd=tmp_path)
    return tmp_path


def test_zizmor_catches_a_kept_token_and_an_injection(broken_repository: Path) -> None:
    ci = broken_repository / ".github" / "workflows" / "ci.yml"
    text = ci.read_text()
    keeps_token = text.replace(
        "        with:\n          persist-credentials: false\n\n      - name: docker build",
        "\n      - name: docker build",
        1,
    )
    injects = keeps_token.replace(
        'REVISION="$GITHUB_SHA"', 'REVISION="${{ github.event.pull_request.title }}"', 1
    )
    assert (
        injects.count("persist-credentials: false") == text.count("persist-credentials: false") - 1
    )
    ci.write_text(injects)

    result = run(
        ZIZMOR, "--offline", "--min-severity", "low", ".github/workflows", cwd=broken_repository
    )

    assert result.returncode != 0
    assert "artipacked" in result.stdout
    assert "template-injection" in result.stdout


def test_actionlint_catches_an_unknown_job_key(broken_repository: Path) -> None:
    deploy = broken_repository / ".github" / "workflows" / "deploy.yml"
    deploy.write_text(deploy.read_text().replace("timeout-minutes: 60", "timeout-minute: 60"))

    result = run(ACTIONLINT, "-no-color", cwd=broken_repository)

    assert result.returncode != 0
    assert "timeout-minute" in result.stdout
