"""The smoke tests as the deploy job runs them (SMOKE_BASE_URL, a separate pytest) pass on a
good service and fail on a broken one: they can stop a bad deploy."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from infra.standins.app import StandinState
from tests.infra.ops.services import service_process
from tests.smoke.conftest import SMOKE_BASE_URL, deployed_url

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    deployed_url() is not None, reason="already running against a deployed stack"
)


def smoke(url: str) -> tuple[int, set[str]]:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/smoke/test_http.py",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rf",
        ],
        cwd=ROOT,
        env={**os.environ, SMOKE_BASE_URL: url},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    failed = set(
        re.findall(r"^FAILED tests/smoke/test_http.py::(\S+)", completed.stdout, re.MULTILINE)
    )
    return completed.returncode, failed


def test_a_good_deploy_passes(
    migrated_database: str, fakes_url: str, fakes: StandinState, tmp_path: Path
) -> None:
    with service_process(migrated_database, fakes_url, tmp_path / "service.log") as url:
        assert smoke(url) == (0, set())


def test_a_deploy_whose_searches_fail_is_stopped(
    migrated_database: str, fakes_url: str, fakes: StandinState, tmp_path: Path
) -> None:
    fakes.jsearch.default = fakes.theirstack.default = "forbidden"  # e.g. a wrong key shipped
    with service_process(migrated_database, fakes_url, tmp_path / "service.log") as url:
        code, failed = smoke(url)

    assert code == 1
    assert failed == {
        "test_one_search_per_source[jsearch]",
        "test_one_search_per_source[theirstack]",
    }


def test_a_deploy_without_its_database_is_stopped(
    migrated_database: str, fakes_url: str, fakes: StandinState, tmp_path: Path
) -> None:
    unreachable = "postgresql://jobsearch_app@127.0.0.1:1/jobsearch"
    with service_process(
        migrated_database, fakes_url, tmp_path / "service.log", DATABASE_URL=unreachable
    ) as url:
        code, failed = smoke(url)

    assert code == 1
    assert "test_ready_with_every_dependency_up" in failed
