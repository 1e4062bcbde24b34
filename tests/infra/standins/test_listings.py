"""The bundled sample, and how each stand-in filters it: different searches, different
answers, every filter held, pages that do not overlap, shapes the service can read."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from infra.standins.listings import (
    SAMPLES,
    jsearch_sample,
    sample_listings,
    theirstack_sample,
)
from jobsearch.upstreams.jsearch import JSearchAnswer
from jobsearch.upstreams.jsearch import to_job as jsearch_to_job
from jobsearch.upstreams.theirstack import TheirStackAnswer
from jobsearch.upstreams.theirstack import to_job as theirstack_to_job

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def _ids(items: list[dict[str, object]], key: str = "job_id") -> set[object]:
    return {item[key] for item in items}


def test_the_sample_is_small_and_varied() -> None:
    listings = sample_listings()
    assert SAMPLES.stat().st_size < 1_000_000
    assert 200 <= len(listings) <= 600
    assert len({listing["id"] for listing in listings}) == len(listings)
    assert len({listing["title"] for listing in listings}) >= 30
    assert len({listing["city"] for listing in listings}) >= 15
    assert len({listing["country"] for listing in listings}) >= 8
    assert set(Counter(listing["employment"] for listing in listings)) == {
        "FULLTIME", "PARTTIME", "CONTRACTOR", "INTERN",
    }  # fmt: skip
    assert {listing["remote"] for listing in listings} == {True, False}
    ages = [listing["posted_days_ago"] for listing in listings]
    assert min(ages) == 0
    assert max(ages) > 30
    with_salary = [listing for listing in listings if listing["salary_min"] is not None]
    assert 0 < len(with_salary) < len(listings)


def test_jsearch_different_queries_give_different_answers() -> None:
    python = jsearch_sample({"query": "python developer"}, NOW)
    nurse = jsearch_sample({"query": "nurse"}, NOW)
    assert python
    assert nurse
    assert not _ids(python) & _ids(nurse)
    # A title, or the skills a listing asks for (its highlights), says Python.
    assert all(
        "python" in job["job_title"].lower() or "Python" in job["job_highlights"]["Qualifications"]
        for job in python
    )
    assert any("python" in job["job_title"].lower() for job in python)
    assert all("nurse" in job["job_title"].lower() for job in nurse)
    assert jsearch_sample({"query": "underwater basket weaver"}, NOW) == []


def test_jsearch_filters_hold() -> None:
    in_city = jsearch_sample({"query": "engineer in Austin", "num_pages": "5"}, NOW)
    assert in_city
    assert {job["job_city"] for job in in_city} == {"Austin"}
    german = jsearch_sample({"query": "engineer", "country": "de"}, NOW)
    assert german
    assert {job["job_country"] for job in german} == {"DE"}
    part_time = jsearch_sample({"query": "", "employment_types": "PARTTIME", "num_pages": "9"})
    assert part_time
    assert {job["job_employment_type"] for job in part_time} == {"PARTTIME"}
    remote = jsearch_sample({"query": "", "remote_jobs_only": "true", "num_pages": "9"}, NOW)
    assert remote
    assert all(job["job_is_remote"] for job in remote)
    every = {"query": "", "num_pages": "20"}
    today = jsearch_sample({**every, "date_posted": "today"}, NOW)
    week = jsearch_sample({**every, "date_posted": "week"}, NOW)
    assert 0 < len(today) < len(week) < len(jsearch_sample(every, NOW))
    for job in today:
        posted = datetime.fromisoformat(job["job_posted_at_datetime_utc"].replace("Z", "+00:00"))
        assert (NOW - posted).days < 1


def test_jsearch_pages_are_ten_and_do_not_overlap() -> None:
    first = jsearch_sample({"query": "engineer", "page": "1"}, NOW)
    second = jsearch_sample({"query": "engineer", "page": "2"}, NOW)
    both = jsearch_sample({"query": "engineer", "page": "1", "num_pages": "2"}, NOW)
    assert len(first) == len(second) == 10
    assert not _ids(first) & _ids(second)
    assert [job["job_id"] for job in both] == [job["job_id"] for job in first + second]


def test_jsearch_answers_pass_the_services_own_parser() -> None:
    data = jsearch_sample({"query": "developer", "num_pages": "20"}, NOW)
    answer = JSearchAnswer.model_validate({"status": "OK", "data": data})
    jobs = [jsearch_to_job(item) for item in answer.data]
    assert len(jobs) == len(data) > 10
    assert any(job.salary for job in jobs)
    assert any(not job.salary for job in jobs)
    assert all(job.apply_link.startswith("https://") and job.city for job in jobs)


def test_theirstack_filters_and_pages() -> None:
    body = {"job_title_or": ["data"], "posted_at_max_age_days": 30, "limit": 5, "page": 0}
    first, total = theirstack_sample(body, NOW)
    second, _ = theirstack_sample({**body, "page": 1}, NOW)
    assert len(first) == len(second) == 5
    assert total > 10
    assert not _ids(first, "id") & _ids(second, "id")
    assert all("data" in job["job_title"].lower() for job in first + second)
    nurses, _ = theirstack_sample({**body, "job_title_or": ["nurse"], "limit": 50}, NOW)
    assert nurses
    assert not _ids(nurses, "id") & _ids(first, "id")
    wide = {"posted_at_max_age_days": 30, "limit": 500}
    british, _ = theirstack_sample({**wide, "job_country_code_or": ["GB"]}, NOW)
    assert british
    assert {job["country_code"] for job in british} == {"GB"}
    on_site, _ = theirstack_sample({**wide, "remote": False}, NOW)
    assert on_site
    assert not any(job["remote"] for job in on_site)
    recent, _ = theirstack_sample({**wide, "posted_at_max_age_days": 3}, NOW)
    assert 0 < len(recent) < len(theirstack_sample(wide, NOW)[0])
    paid, _ = theirstack_sample({**wide, "min_salary_usd": 150_000}, NOW)
    assert paid
    assert all(job["max_annual_salary_usd"] >= 150_000 for job in paid)


def test_theirstack_answers_pass_the_services_own_parser() -> None:
    data, _ = theirstack_sample({"posted_at_max_age_days": 30, "limit": 100}, NOW)
    answer = TheirStackAnswer.model_validate({"data": data})
    jobs = [theirstack_to_job(item) for item in answer.data]
    assert len(jobs) == 100
    assert all(job.company and job.country and job.type for job in jobs)
    assert any(job.salary.startswith("$") for job in jobs)
