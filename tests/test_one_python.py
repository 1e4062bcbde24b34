"""One Python everywhere: 3.11, the Python of this machine, CI and Debian bookworm.

requires-python, the locks, ruff's and mypy's target, the workflows'
setup-python, the image's default base (pinned by digest) and the local Debian
base all name the same minor version; this fails when any of them drifts.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]
PYTHON = "3.11"
# The python3 each Debian suite ships (the local base is Debian's Python).
DEBIAN_PYTHON = {"bookworm": "3.11", "trixie": "3.13"}


def _debian_suite() -> str:
    """The local base's suite, as infra/local/images.py builds it (read, not imported)."""
    images = (ROOT / "infra" / "local" / "images.py").read_text()
    (suite,) = re.findall(r'^DEBIAN_SUITE = "(\w+)"$', images, re.MULTILINE)
    return str(suite)


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_requires_python_admits_only_the_one_python() -> None:
    allowed = SpecifierSet(_pyproject()["project"]["requires-python"])
    major, minor = (int(part) for part in PYTHON.split("."))
    assert f"{PYTHON}.0" in allowed
    assert f"{PYTHON}.99" in allowed
    assert f"{major}.{minor + 1}.0" not in allowed
    assert f"{major}.{minor - 1}.99" not in allowed


def test_ruff_and_mypy_target_it() -> None:
    tool = _pyproject()["tool"]
    assert tool["ruff"]["target-version"] == "py" + PYTHON.replace(".", "")
    assert tool["mypy"]["python_version"] == PYTHON


def test_the_locks_are_resolved_for_it() -> None:
    makefile = (ROOT / "Makefile").read_text()
    compiles = [line for line in makefile.splitlines() if "pip compile" in line]
    assert len(compiles) == 2
    for line in compiles:
        assert f"--python-version {PYTHON} " in line, line


def _setup_python_steps() -> list[tuple[str, dict[str, Any]]]:
    steps = []
    for path in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        workflow = yaml.safe_load(path.read_text())
        for job in (workflow.get("jobs") or {}).values():
            for step in job.get("steps") or []:
                if str(step.get("uses", "")).startswith("actions/setup-python@"):
                    steps.append((path.name, step))
    return steps


def test_the_workflows_set_up_it() -> None:
    steps = _setup_python_steps()
    assert steps, "no workflow sets up Python"
    for name, step in steps:
        assert str(step["with"]["python-version"]) == PYTHON, name


def test_the_image_defaults_to_it_pinned_by_digest() -> None:
    dockerfile = (ROOT / "service" / "Dockerfile").read_text()
    (default,) = re.findall(r"^ARG BASE_IMAGE=(\S+)$", dockerfile, re.MULTILINE)
    assert re.fullmatch(rf"python:{re.escape(PYTHON)}-slim(-\w+)?@sha256:[0-9a-f]{{64}}", default)


def test_the_local_debian_base_has_it() -> None:
    suite = _debian_suite()
    assert DEBIAN_PYTHON[suite] == PYTHON
    # The image's Debian flavour and the local base are the same suite.
    dockerfile = (ROOT / "service" / "Dockerfile").read_text()
    assert f"-slim-{suite}@" in dockerfile


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="CPython only")
def test_the_suite_runs_on_it() -> None:
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == PYTHON
