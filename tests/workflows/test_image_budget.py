"""The deliver workflow checks the built image's size against one budget, before pushing.

The budget is kept in pyproject.toml ([tool.jobsearch] image-budget-mb) and nowhere
else; the step reads it from there. Here the step runs with a stand-in `docker`
answering the size GitHub's runner would measure.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from tests.workflows import rules
from tests.workflows.test_pipeline import DELIVER, _image_job

STEP = "Image size within the budget"


def budget_mb() -> int:
    document = tomllib.loads((rules.ROOT / "pyproject.toml").read_text())
    return int(document["tool"]["jobsearch"]["image-budget-mb"])


def test_the_budget_is_kept_in_one_place() -> None:
    # The target is 150 MB; pyproject.toml says why the budget sits above it for now.
    assert 150 <= budget_mb() <= 170
    [script] = [s["run"] for s in DELIVER.jobs["image"]["steps"] if s.get("name") == STEP]
    assert "image-budget-mb" in script
    assert not re.search(rf"\b{budget_mb()}\b", script), "the workflow reads it, never repeats it"
    names = [s.get("name") for s in DELIVER.jobs["image"]["steps"]]
    assert names.index("docker build") < names.index(STEP)
    assert names.index(STEP) < names.index("Push to GHCR and take the digest")


def test_an_image_over_the_budget_fails_and_is_never_pushed(tmp_path: Path) -> None:
    over = budget_mb() * 1_000_000 + 1

    run, calls = _image_job(tmp_path, f"ghcr.io/acme/jobsearch-api@sha256:{'a' * 64}", str(over))

    assert run.failed
    assert run.step(STEP).outcome == "failure"
    assert f"over its budget of {budget_mb()} MB" in run.log
    assert f"Image size: {over / 1e6:.1f} MB ({over} bytes); budget: {budget_mb()} MB" in (
        run.step(STEP).summary
    )
    assert not [call for call in calls if call.split()[0] == "push"], "an oversized image is pushed"


@pytest.mark.parametrize("size", ["98765432", "150000000"])
def test_an_image_within_the_budget_passes_and_says_its_size(tmp_path: Path, size: str) -> None:
    run, calls = _image_job(tmp_path, f"ghcr.io/acme/jobsearch-api@sha256:{'a' * 64}", size)

    assert not run.failed, run.log
    assert run.step(STEP).outcome == "success"
    assert f"Image size: {int(size) / 1e6:.1f} MB ({size} bytes)" in run.step(STEP).summary
    assert [call.split()[0] for call in calls].count("push") == 1


def test_no_size_is_a_failure_not_a_pass(tmp_path: Path) -> None:
    run, _ = _image_job(tmp_path, f"ghcr.io/acme/jobsearch-api@sha256:{'a' * 64}", "")

    assert run.step(STEP).outcome == "failure"
    assert "no size for" in run.log
