"""What must hold right after a deploy, seen from outside: the frontend's contract works.

Each search costs one paid upstream call on a deployed stack (then it is cached).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

from jobsearch.middleware import SECURITY_HEADERS
from jobsearch.models import JobSearchResponse

TIMEOUT = httpx.Timeout(45.0)
# Common enough that both sources always have jobs for it.
SEARCH = {"jobTitle": "software engineer", "country": "US", "datePosted": "past month"}


def test_health(smoke_url: str) -> None:
    response = httpx.get(f"{smoke_url}/health", timeout=TIMEOUT)

    assert response.status_code == 200
    assert response.json() == {"status": "healthy"}


def test_ready_with_every_dependency_up(smoke_url: str) -> None:
    response = httpx.get(f"{smoke_url}/ready", timeout=TIMEOUT)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready", body
    sources = body["checks"]["sources"]
    assert all(info["configured"] for info in sources.values()), sources


@pytest.mark.parametrize("source", ["jsearch", "theirstack"])
def test_one_search_per_source(smoke_url: str, source: str) -> None:
    response = httpx.post(f"{smoke_url}/api/jobs/{source}", json=SEARCH, timeout=TIMEOUT)

    assert response.status_code == 200, response.text
    found = JobSearchResponse.model_validate(response.json())
    assert 0 < len(found.jobs) <= 15
    assert response.headers["X-Cache"] in ("hit", "miss", "coalesced")


def test_security_headers(smoke_url: str) -> None:
    response = httpx.get(f"{smoke_url}/health", timeout=TIMEOUT)

    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name
    if urlsplit(smoke_url).scheme == "https":
        assert "max-age=" in response.headers.get("Strict-Transport-Security", "")
