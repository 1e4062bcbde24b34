"""Searches served by a local stand-in say so: the X-Sample-Data header, and /ready's
`data` per source; SAMPLE_SOURCES is refused outside development."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from infra.standins.app import StandinState
from jobsearch.routers.jobs import SAMPLE_DATA_HEADER
from jobsearch.settings import describe_validation_error, settings_from
from tests.conftest import ServiceRunner


@pytest.mark.parametrize("app_env", ["staging", "production"])
def test_sample_sources_are_refused_outside_development(app_env: str) -> None:
    with pytest.raises(ValidationError) as caught:
        settings_from({"app_env": app_env, "sample_sources": "jsearch"})
    message = describe_validation_error(caught.value)
    assert message.startswith("invalid setting: SAMPLE_SOURCES:")
    assert f"APP_ENV is {app_env}" in message


def test_sample_sources_parse_in_development_and_refuse_unknown_names() -> None:
    settings = settings_from({"app_env": "development", "sample_sources": " JSearch,theirstack "})
    assert settings.sample_sources == ["jsearch", "theirstack"]
    assert settings_from({"app_env": "production"}).sample_sources == []
    with pytest.raises(ValidationError) as caught:
        settings_from({"app_env": "development", "sample_sources": "jsearch,indeed"})
    assert "SAMPLE_SOURCES" in describe_validation_error(caught.value)


def test_only_a_sample_sources_searches_carry_the_header(
    run_service: ServiceRunner, fakes: StandinState
) -> None:
    with run_service(sample_sources="jsearch") as url:
        sample = httpx.post(f"{url}/api/jobs/jsearch", json={"jobTitle": "python"})
        live = httpx.post(f"{url}/api/jobs/theirstack", json={"jobTitle": "python"})
        again = httpx.post(f"{url}/api/jobs/jsearch", json={"jobTitle": "python"})
        ready = httpx.get(f"{url}/ready").json()
    assert sample.status_code == live.status_code == 200
    assert sample.headers[SAMPLE_DATA_HEADER] == "true"
    assert SAMPLE_DATA_HEADER not in live.headers
    # A cache hit is sample data all the same.
    assert again.headers["X-Cache"] == "hit"
    assert again.headers[SAMPLE_DATA_HEADER] == "true"
    assert ready["checks"]["sources"]["jsearch"]["data"] == "sample"
    assert ready["checks"]["sources"]["theirstack"]["data"] == "live"
    assert ready["status"] == "ready"


def test_without_sample_sources_every_source_is_live(
    run_service: ServiceRunner, fakes: StandinState
) -> None:
    with run_service() as url:
        response = httpx.post(f"{url}/api/jobs/jsearch", json={"jobTitle": "python"})
        sources = httpx.get(f"{url}/ready").json()["checks"]["sources"]
    assert response.status_code == 200
    assert SAMPLE_DATA_HEADER not in response.headers
    assert {source["data"] for source in sources.values()} == {"live"}


def test_the_sample_answers_each_search_differently_through_the_service(
    run_service: ServiceRunner, fakes: StandinState, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fakes, "listings", "sample")
    with run_service(sample_sources="jsearch,theirstack") as url:
        answers = {
            (source, title): httpx.post(
                f"{url}/api/jobs/{source}", json={"jobTitle": title, "country": "US"}
            ).json()["jobs"]
            for source in ("jsearch", "theirstack")
            for title in ("software engineer", "nurse")
        }
    for (source, title), jobs in answers.items():
        assert jobs, (source, title)
        assert {job["country"] for job in jobs} == {"US"}
    for source in ("jsearch", "theirstack"):
        engineers = {job["id"] for job in answers[source, "software engineer"]}
        nurses = {job["id"] for job in answers[source, "nurse"]}
        assert not engineers & nurses
