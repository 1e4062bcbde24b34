"""The frontend's request: constraints and the cache key (free-text variants: test_normalize)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from jobsearch import models
from jobsearch.models import JobSearchRequest


def parse(**fields: Any) -> JobSearchRequest:
    return JobSearchRequest.model_validate({"jobTitle": "python developer", **fields})


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"jobTitle": ""}, "jobTitle"),
        ({"jobTitle": "   "}, "jobTitle"),
        ({"jobTitle": "x" * 121}, "jobTitle"),
        ({"city": "x" * 101}, "city"),
        ({"industry": "x" * 101}, "industry"),
        ({"salaryMin": "lots"}, "salaryMin"),
        ({"salaryMin": -1}, "salaryMin"),
        ({"salaryMax": 10**9}, "salaryMax"),
        ({"salaryMin": 150000, "salaryMax": 100000}, "salaryMax"),
        ({"jobType": "whenever"}, "jobType"),
        ({"datePosted": "yesterday-ish"}, "datePosted"),
        ({"country": "Atlantis"}, "country"),
        ({"jobTitle": 5}, "jobTitle"),
    ],
)
def test_bad_input_names_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        JobSearchRequest.model_validate({"jobTitle": "python developer", **fields})
    assert field in {str(error["loc"][0]) for error in caught.value.errors()}


def test_missing_job_title_is_refused() -> None:
    with pytest.raises(ValidationError):
        JobSearchRequest.model_validate({"city": "Austin"})


def test_cache_key_ignores_case_spacing_and_spelling_variants() -> None:
    a = parse(jobTitle="Python  Developer", city="austin", jobType="full time", country="us")
    b = parse(jobTitle="python developer", city="Austin", jobType="Full-time", country="US")
    assert a.cache_key == b.cache_key
    assert len(a.cache_key) == 64


def test_cache_key_differs_when_the_search_differs() -> None:
    assert parse(city="Austin").cache_key != parse(city="Boston").cache_key
    assert parse(jobType="Remote").cache_key != parse(jobType="Hybrid").cache_key


def test_cache_key_carries_the_response_schema_version(monkeypatch: pytest.MonkeyPatch) -> None:
    before = parse().cache_key
    monkeypatch.setattr(models, "RESPONSE_SCHEMA_VERSION", models.RESPONSE_SCHEMA_VERSION + 1)
    assert parse().cache_key != before


def test_control_characters_are_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        JobSearchRequest.model_validate({"jobTitle": "dev\u0000ops"})
    assert "jobTitle" in {str(error["loc"][0]) for error in caught.value.errors()}
