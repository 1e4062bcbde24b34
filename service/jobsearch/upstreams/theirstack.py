"""TheirStack: POST /v1/jobs/search with a bearer token. Billing is per job returned."""

from __future__ import annotations

import httpx
from pydantic import BaseModel, ConfigDict

from jobsearch.models import (
    MAX_DESCRIPTION_CHARS,
    MAX_JOBS_PER_SOURCE,
    DatePosted,
    Job,
    JobSearchRequest,
    JobType,
)
from jobsearch.upstreams.base import UpstreamClient
from jobsearch.upstreams.shaping import Amount, format_salary, join_location, wanted

# TheirStack requires a date filter; "all" maps to the widest window the old app used.
_MAX_AGE_DAYS = {
    DatePosted.TODAY: 1,
    DatePosted.THREE_DAYS: 3,
    DatePosted.WEEK: 7,
    DatePosted.MONTH: 30,
    DatePosted.ALL: 30,
}
_EMPLOYMENT_STATUSES = {
    "full_time": "Full-time",
    "part_time": "Part-time",
    "contract": "Contract",
    "internship": "Internship",
    "temporary": "Temporary",
}


class CompanyObject(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = None


class TheirStackJob(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int | str
    job_title: str
    url: str | None = None
    final_url: str | None = None
    date_posted: str | None = None
    company: str | None = None
    company_object: CompanyObject | None = None
    location: str | None = None
    short_location: str | None = None
    country: str | None = None
    country_code: str | None = None
    remote: bool | None = None
    hybrid: bool | None = None
    salary_string: str | None = None
    min_annual_salary_usd: Amount = None
    max_annual_salary_usd: Amount = None
    employment_statuses: list[str] | None = None
    description: str | None = None


class TheirStackAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    data: list[TheirStackJob]


class TheirStackClient(UpstreamClient):
    source = "theirstack"

    @classmethod
    def auth_headers(cls, api_key: str, base_url: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    def build_request(self, search: JobSearchRequest) -> httpx.Request:
        body: dict[str, object] = {
            "page": 0,
            "limit": MAX_JOBS_PER_SOURCE,
            "posted_at_max_age_days": _MAX_AGE_DAYS[search.date_posted],
            "job_title_or": [search.job_title],
        }
        if search.country:
            body["job_country_code_or"] = [search.country]
        if search.city:
            body["job_location_pattern_or"] = [search.city]
        if search.job_type is JobType.REMOTE:
            body["remote"] = True
        elif search.job_type is JobType.ON_SITE:
            body["remote"] = False
        if search.salary_min is not None:
            body["min_salary_usd"] = search.salary_min
        if search.salary_max is not None:
            body["max_salary_usd"] = search.salary_max
        return self.http.build_request("POST", "/v1/jobs/search", json=body)

    async def search(self, search: JobSearchRequest) -> list[Job]:
        answer = await self.send(self.build_request(search), TheirStackAnswer.model_validate)
        return [
            to_job(item)
            for item in answer.data
            if wanted(
                search,
                remote=bool(item.remote),
                salary_low=item.min_annual_salary_usd,
                salary_high=item.max_annual_salary_usd,
            )
            and _employment_matches(search, item.employment_statuses)
        ]


def _employment_matches(search: JobSearchRequest, statuses: list[str] | None) -> bool:
    wanted_status = {JobType.FULL_TIME: "full_time", JobType.PART_TIME: "part_time"}.get(
        search.job_type
    )
    return wanted_status is None or not statuses or wanted_status in statuses


def to_job(item: TheirStackJob) -> Job:
    city, state = _split_short_location(item.short_location)
    statuses = item.employment_statuses or []
    salary = item.salary_string or format_salary(
        item.min_annual_salary_usd, item.max_annual_salary_usd, "USD", "YEAR"
    )
    company = item.company or (item.company_object.name if item.company_object else None)
    return Job(
        id=str(item.id),
        title=item.job_title,
        company=company or "",
        location=item.location or join_location(city, state, item.country_code),
        city=city,
        state=state,
        country=item.country_code or item.country or "",
        salary=salary,
        type=_EMPLOYMENT_STATUSES.get(statuses[0], statuses[0]) if statuses else "",
        remote=bool(item.remote),
        posted=item.date_posted or "",
        description=(item.description or "")[:MAX_DESCRIPTION_CHARS],
        apply_link=item.final_url or item.url or "",
    )


def _split_short_location(short_location: str | None) -> tuple[str, str]:
    """ "Austin, TX" -> ("Austin", "TX")."""
    if not short_location:
        return "", ""
    city, _, state = short_location.partition(",")
    return city.strip(), state.strip()
