"""The frontend's contract end to end: real sockets, real httpx, fake upstreams, real Postgres."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from infra.standins.app import StandinState
from tests.conftest import ServiceRunner

SEARCH = {"jobTitle": "python developer", "city": "Austin", "country": "US"}
JOB_FIELDS = {
    "id", "title", "company", "location", "city", "state", "country",
    "salary", "type", "remote", "posted", "description", "applyLink",
}  # fmt: skip


@pytest.mark.parametrize("source", ["jsearch", "theirstack"])
def test_search_returns_at_most_15_normalised_jobs(
    service_url: str, fakes: StandinState, source: str
) -> None:
    response = httpx.post(f"{service_url}/api/jobs/{source}", json=SEARCH)
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == len(body["jobs"]) == 15
    for job in body["jobs"]:
        assert set(job) == JOB_FIELDS
        assert len(job["description"]) <= 500
        assert isinstance(job["remote"], bool)
        assert job["applyLink"].startswith("https://")


def test_jsearch_request_uses_the_documented_parameters(
    service_url: str, fakes: StandinState
) -> None:
    httpx.post(
        f"{service_url}/api/jobs/jsearch",
        json={**SEARCH, "jobType": "Remote", "datePosted": "past week"},
    )
    sent = fakes.jsearch.last_request
    assert sent["query"] == "python developer in Austin"
    assert sent["country"] == "us"
    assert sent["date_posted"] == "week"
    assert sent["remote_jobs_only"] == "true"


def test_theirstack_request_asks_for_15_and_always_has_a_date_filter(
    service_url: str, fakes: StandinState
) -> None:
    httpx.post(f"{service_url}/api/jobs/theirstack", json={**SEARCH, "salaryMin": "100000"})
    sent = fakes.theirstack.last_request
    assert sent["limit"] == 15
    assert sent["posted_at_max_age_days"] == 30
    assert sent["job_title_or"] == ["python developer"]
    assert sent["job_country_code_or"] == ["US"]
    assert sent["min_salary_usd"] == 100000


def test_second_identical_request_is_a_cache_hit(service_url: str, fakes: StandinState) -> None:
    first = httpx.post(f"{service_url}/api/jobs/jsearch", json=SEARCH)
    second = httpx.post(
        f"{service_url}/api/jobs/jsearch", json={**SEARCH, "jobTitle": "Python  Developer"}
    )
    assert first.headers["x-cache"] == "miss"
    assert second.headers["x-cache"] == "hit"
    assert second.json() == first.json()
    assert fakes.jsearch.calls == 1


def test_cache_is_shared_through_postgres(
    run_service: ServiceRunner, fakes: StandinState, migrated_database: str
) -> None:
    with run_service() as first_replica:
        httpx.post(f"{first_replica}/api/jobs/theirstack", json=SEARCH)
    with run_service() as second_replica:
        response = httpx.post(f"{second_replica}/api/jobs/theirstack", json=SEARCH)
    assert response.headers["x-cache"] == "hit"
    assert fakes.theirstack.calls == 1
    with psycopg.connect(migrated_database) as connection:
        row = connection.execute(
            "select source, expires_at > now() + interval '59 minutes' from job_cache"
        ).fetchone()
    assert row == ("theirstack", True)


def test_no_jobs_found_is_an_empty_200_with_a_hint(service_url: str, fakes: StandinState) -> None:
    fakes.theirstack.default = "empty"
    response = httpx.post(f"{service_url}/api/jobs/theirstack", json=SEARCH)
    assert response.status_code == 200
    assert response.json()["jobs"] == []
    assert response.json()["total"] == 0
    assert "broader" in response.json()["hint"]


def test_validation_error_names_the_field(service_url: str, fakes: StandinState) -> None:
    response = httpx.post(
        f"{service_url}/api/jobs/jsearch",
        json={"jobTitle": "dev", "salaryMin": 200000, "salaryMax": 100000},
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "salaryMax" in error["message"]
    assert error["fields"][0]["field"] == "salaryMax"
    assert error["request_id"] == response.headers["x-request-id"]
    assert fakes.jsearch.calls == 0


def test_unconfigured_source_answers_503_and_the_other_keeps_working(
    run_service: ServiceRunner, fakes: StandinState
) -> None:
    with run_service(rapid_api_key=None) as url:
        off = httpx.post(f"{url}/api/jobs/jsearch", json=SEARCH)
        on = httpx.post(f"{url}/api/jobs/theirstack", json=SEARCH)
        ready = httpx.get(f"{url}/ready").json()
    assert off.status_code == 503
    assert off.json()["error"]["code"] == "source_not_configured"
    assert on.status_code == 200
    assert ready["checks"]["sources"]["jsearch"] == {"configured": False}


def test_no_source_configured_makes_ready_503_but_health_200(run_service: ServiceRunner) -> None:
    with run_service(rapid_api_key=None, theirstack_api_key=None) as url:
        assert httpx.get(f"{url}/health").json() == {"status": "healthy"}
        ready = httpx.get(f"{url}/ready")
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"


def test_ready_reports_each_dependency(service_url: str) -> None:
    body = httpx.get(f"{service_url}/ready").json()
    assert body["status"] == "ready"
    assert body["checks"]["database"]["status"] == "up"
    assert body["checks"]["sources"]["theirstack"]["circuit"] == "closed"


def test_security_headers_on_every_response(service_url: str) -> None:
    for response in (
        httpx.get(f"{service_url}/health"),
        httpx.get(f"{service_url}/nope"),
        httpx.post(f"{service_url}/api/jobs/jsearch", json={}),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "default-src 'none'" in response.headers["content-security-policy"]


def test_unknown_path_and_method_get_json_errors(service_url: str) -> None:
    missing = httpx.get(f"{service_url}/api/jobs/linkedin")
    wrong_method = httpx.get(f"{service_url}/api/jobs/jsearch")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"


def test_request_id_is_accepted_and_echoed(service_url: str) -> None:
    given = httpx.get(f"{service_url}/health", headers={"X-Request-ID": "frontend-abc.123"})
    unsafe = httpx.get(f"{service_url}/health", headers={"X-Request-ID": "bad id\twith tab"})
    assert given.headers["x-request-id"] == "frontend-abc.123"
    assert unsafe.headers["x-request-id"] != "bad id\twith tab"
    assert len(unsafe.headers["x-request-id"]) == 32


def test_cors_allows_exactly_the_configured_origins(service_url: str) -> None:
    def preflight(origin: str) -> httpx.Response:
        return httpx.options(
            f"{service_url}/api/jobs/jsearch",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )

    allowed = preflight("https://app.example.com")
    refused = preflight("https://evil.example.com")
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "access-control-allow-origin" not in refused.headers
    simple = httpx.get(f"{service_url}/health", headers={"Origin": "https://evil.example.com"})
    assert "access-control-allow-origin" not in simple.headers


def test_metrics_count_requests_upstream_calls_and_cache(
    service_url: str, fakes: StandinState
) -> None:
    search = {**SEARCH, "city": "Metricsville"}
    httpx.post(f"{service_url}/api/jobs/jsearch", json=search)
    httpx.post(f"{service_url}/api/jobs/jsearch", json=search)
    text = httpx.get(f"{service_url}/metrics").text
    assert 'jobsearch_upstream_requests_total{outcome="ok",source="jsearch"}' in text
    assert 'jobsearch_cache_lookups_total{result="hit",source="jsearch"}' in text
    assert (
        'jobsearch_http_requests_total{method="POST",route="/api/jobs/jsearch",status="200"}'
        in text
    )
    assert "jobsearch_http_request_duration_seconds_bucket" in text
    assert 'jobsearch_upstream_quota_remaining{source="jsearch"} 497.0' in text


@pytest.mark.parametrize("source", ["jsearch", "theirstack"])
def test_ready_reports_a_low_upstream_quota(
    service_url: str, fakes: StandinState, source: str
) -> None:
    assert httpx.get(f"{service_url}/ready").json()["checks"]["quota"]["status"] == "ok"
    getattr(fakes, source).default = "quota"
    httpx.post(f"{service_url}/api/jobs/{source}", json={"jobTitle": "quota probe"})
    body = httpx.get(f"{service_url}/ready").json()
    assert body["checks"]["sources"][source]["quota_remaining"] == 0
    assert body["checks"]["quota"] == {"status": "low", "low_below": 50}
    assert body["status"] == "ready", "a low quota alone does not degrade searches"
