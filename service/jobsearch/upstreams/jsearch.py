"""JSearch on RapidAPI: GET /search with an X-RapidAPI-Key header."""

from __future__ import annotations

import httpx
from pydantic import BaseModel, ConfigDict, field_validator

from jobsearch.models import (
    MAX_DESCRIPTION_CHARS,
    DatePosted,
    Job,
    JobSearchRequest,
    JobType,
)
from jobsearch.upstreams.base import UpstreamClient
from jobsearch.upstreams.shaping import Amount, format_salary, join_location, wanted

_EMPLOYMENT_TYPES = {
    "FULLTIME": "Full-time",
    "PARTTIME": "Part-time",
    "CONTRACTOR": "Contract",
    "INTERN": "Internship",
}


class JSearchJob(BaseModel):
    model_config = ConfigDict(extra="ignore")

    job_id: str
    job_title: str
    employer_name: str | None = None
    job_employment_type: str | None = None
    job_apply_link: str | None = None
    job_description: str | None = None
    job_is_remote: bool | None = None
    job_posted_at_datetime_utc: str | None = None
    job_city: str | None = None
    job_state: str | None = None
    job_country: str | None = None
    job_min_salary: Amount = None
    job_max_salary: Amount = None
    job_salary_currency: str | None = None
    job_salary_period: str | None = None


class JSearchAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: str | None = None
    data: list[JSearchJob]

    @field_validator("status")
    @classmethod
    def _status_ok(cls, status: str | None) -> str | None:
        # JSearch can answer HTTP 200 with "status": "ERROR" and no data: not "no jobs".
        if status is not None and status.strip().upper() != "OK":
            raise ValueError(f"JSearch answered status {status[:20]!r}")
        return status


class JSearchClient(UpstreamClient):
    source = "jsearch"

    @classmethod
    def auth_headers(cls, api_key: str, base_url: str) -> dict[str, str]:
        return {"X-RapidAPI-Key": api_key, "X-RapidAPI-Host": httpx.URL(base_url).host}

    def quota_exhausted(self, response: httpx.Response) -> bool:
        # RapidAPI sends the plan's remaining count; 0 means the month is used up.
        return str(response.headers.get("x-ratelimit-requests-remaining", "")).strip() == "0"

    def build_request(self, search: JobSearchRequest) -> httpx.Request:
        query = " ".join(part for part in (search.job_title, search.industry) if part)
        if search.city:
            query = f"{query} in {search.city}"
        params: dict[str, str] = {
            "query": query,
            "page": "1",
            "num_pages": "1",
            "date_posted": search.date_posted.value or DatePosted.ALL.value,
        }
        if search.country:
            params["country"] = search.country.lower()
        if search.job_type is JobType.REMOTE:
            params["remote_jobs_only"] = "true"
        elif search.job_type is JobType.FULL_TIME:
            params["employment_types"] = "FULLTIME"
        elif search.job_type is JobType.PART_TIME:
            params["employment_types"] = "PARTTIME"
        return self.http.build_request("GET", "/search", params=params)

    async def search(self, search: JobSearchRequest) -> list[Job]:
        answer = await self.send(self.build_request(search), JSearchAnswer.model_validate)
        return [
            to_job(item)
            for item in answer.data
            if wanted(
                search,
                remote=bool(item.job_is_remote),
                salary_low=item.job_min_salary,
                salary_high=item.job_max_salary,
            )
        ]


def to_job(item: JSearchJob) -> Job:
    return Job(
        id=item.job_id,
        title=item.job_title,
        company=item.employer_name or "",
        location=join_location(item.job_city, item.job_state, item.job_country)
        or ("Remote" if item.job_is_remote else ""),
        city=item.job_city or "",
        state=item.job_state or "",
        country=item.job_country or "",
        salary=format_salary(
            item.job_min_salary,
            item.job_max_salary,
            item.job_salary_currency,
            item.job_salary_period,
        ),
        type=_EMPLOYMENT_TYPES.get((item.job_employment_type or "").upper(), "")
        or (item.job_employment_type or ""),
        remote=bool(item.job_is_remote),
        posted=item.job_posted_at_datetime_utc or "",
        description=(item.job_description or "")[:MAX_DESCRIPTION_CHARS],
        apply_link=item.job_apply_link or "",
    )
