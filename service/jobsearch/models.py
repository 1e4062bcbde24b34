"""The frontend's contract: the search request it sends and the jobs it gets back.

Field names stay camelCase on the wire because the deployed Next.js frontend
sends and reads them that way. Values the old frontend sent as free text
(job type, date posted, salaries as strings) are still accepted: the field
types come from jobsearch.normalize, so everything past this module sees one
canonical form.
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel

from jobsearch.normalize import (
    Country,
    DatePosted,
    DatePostedWords,
    JobType,
    JobTypeWords,
    Salary,
    SearchText,
)

__all__ = [
    "MAX_DESCRIPTION_CHARS",
    "MAX_JOBS_PER_SOURCE",
    "RESPONSE_SCHEMA_VERSION",
    "DatePosted",
    "Job",
    "JobSearchRequest",
    "JobSearchResponse",
    "JobType",
]

MAX_JOBS_PER_SOURCE = 15
MAX_DESCRIPTION_CHARS = 500
# Part of every cache key. Raise it whenever JobSearchResponse (or Job) changes shape:
# generations of the service share job_cache during a rollout and a rollback, and
# each then reads only the rows its own model wrote.
RESPONSE_SCHEMA_VERSION = 1


class JobSearchRequest(BaseModel):
    """What the frontend posts to /api/jobs/{source}."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        str_strip_whitespace=True,
        frozen=True,
    )

    job_title: SearchText = Field(min_length=1, max_length=120)
    industry: SearchText = Field(default="", max_length=100)
    salary_min: Salary = None
    salary_max: Salary = None
    job_type: JobTypeWords = JobType.ANY
    city: SearchText = Field(default="", max_length=100)
    country: Country = None
    date_posted: DatePostedWords = DatePosted.ALL

    @field_validator("salary_max")
    @classmethod
    def _max_not_below_min(cls, salary_max: int | None, info: ValidationInfo) -> int | None:
        salary_min = info.data.get("salary_min")
        if salary_max is not None and salary_min is not None and salary_max < salary_min:
            raise ValueError("must be greater than or equal to salaryMin")
        return salary_max

    @cached_property
    def cache_key(self) -> str:
        """A hash that is equal for requests that would return the same jobs.

        Every field takes part (a field added later changes every key, which is
        safe); the free-text ones count without case. The response schema's
        version does too, so that a changed response model never meets old rows.
        """
        canonical: list[tuple[str, object]] = [("__schema__", RESPONSE_SCHEMA_VERSION)]
        canonical += [
            (name, value.casefold() if isinstance(value, str) else value)
            for name in sorted(type(self).model_fields)
            for value in (getattr(self, name),)
        ]
        encoded = json.dumps(canonical, separators=(",", ":"), default=str)
        return hashlib.sha256(encoded.encode()).hexdigest()


class Job(BaseModel):
    """One job, the same shape whichever source found it."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    id: str
    title: str
    company: str
    location: str
    city: str
    state: str
    country: str
    salary: str
    type: str
    remote: bool
    posted: str
    description: str = Field(max_length=MAX_DESCRIPTION_CHARS)
    apply_link: str


class JobSearchResponse(BaseModel):
    jobs: list[Job]
    total: int
    hint: str | None = Field(
        default=None, description="Set when nothing was found: how to widen the search."
    )
