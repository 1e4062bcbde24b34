"""Upstream listings turned into the frontend's jobs: odd numbers never break a search."""

from __future__ import annotations

import math

import httpx
import pytest

from infra.standins.app import StandinState
from jobsearch.upstreams.shaping import format_salary


@pytest.mark.parametrize("source", ["jsearch", "theirstack"])
def test_an_infinite_salary_is_no_salary_and_never_a_500(
    service_url: str, fakes: StandinState, source: str
) -> None:
    getattr(fakes, source).default = "infinite_salary"  # job_min_salary: 1e400 in the JSON
    response = httpx.post(f"{service_url}/api/jobs/{source}", json={"jobTitle": "infinite pay"})
    assert response.status_code == 200, response.text
    jobs = response.json()["jobs"]
    assert len(jobs) == 15
    assert not any("inf" in job["salary"].lower() for job in jobs)


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_format_salary_leaves_out_a_non_finite_amount(value: float) -> None:
    assert format_salary(value, None, "USD", "YEAR") == ""
    assert format_salary(value, 150000, "USD", "YEAR") == "USD 150,000 / year"
