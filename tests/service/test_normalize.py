"""Free-text variants the old frontend sends, normalised to one canonical form."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter

from jobsearch.normalize import (
    Country,
    DatePosted,
    DatePostedWords,
    JobType,
    JobTypeWords,
    Salary,
)

JOB_TYPE: TypeAdapter[JobType] = TypeAdapter(JobTypeWords)
DATE_POSTED: TypeAdapter[DatePosted] = TypeAdapter(DatePostedWords)
COUNTRY: TypeAdapter[str | None] = TypeAdapter(Country)
SALARY: TypeAdapter[int | None] = TypeAdapter(Salary)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Remote", JobType.REMOTE),
        ("remote", JobType.REMOTE),
        ("On-site", JobType.ON_SITE),
        ("onsite", JobType.ON_SITE),
        ("On Site", JobType.ON_SITE),
        ("Full-time", JobType.FULL_TIME),
        ("full time", JobType.FULL_TIME),
        ("FULL_TIME", JobType.FULL_TIME),
        ("Part-time", JobType.PART_TIME),
        ("Hybrid", JobType.HYBRID),
        ("", JobType.ANY),
    ],
)
def test_job_type_accepts_the_old_frontends_variants(text: str, expected: JobType) -> None:
    assert JOB_TYPE.validate_python(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("today", DatePosted.TODAY),
        ("past week", DatePosted.WEEK),
        ("Past Month", DatePosted.MONTH),
        ("3days", DatePosted.THREE_DAYS),
        ("last 24 hours", DatePosted.TODAY),
        ("", DatePosted.ALL),
        ("all", DatePosted.ALL),
    ],
)
def test_date_posted_accepts_free_text(text: str, expected: DatePosted) -> None:
    assert DATE_POSTED.validate_python(text) is expected


@pytest.mark.parametrize(
    ("country", "code"),
    [
        ("US", "US"),
        ("us", "US"),
        ("United States", "US"),
        ("Germany", "DE"),
        ("GBR", "GB"),
        ("", None),
    ],
)
def test_country_becomes_alpha_2(country: str, code: str | None) -> None:
    assert COUNTRY.validate_python(country) == code


@pytest.mark.parametrize(
    ("salary", "value"), [("120000", 120000), ("120,000", 120000), ("$120k", 120000), ("", None)]
)
def test_salaries_arrive_as_strings(salary: str, value: int | None) -> None:
    assert SALARY.validate_python(salary) == value
