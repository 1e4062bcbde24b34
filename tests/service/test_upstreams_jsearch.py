"""JSearch's own answer: its `status` says whether the data can be trusted."""

from __future__ import annotations

import httpx

from infra.standins.app import StandinState


def test_a_non_ok_status_is_a_malformed_answer_and_nothing_is_cached(
    service_url: str, fakes: StandinState
) -> None:
    fakes.jsearch.script = ["status_error"]  # HTTP 200, "status": "ERROR", "data": []

    def search() -> httpx.Response:
        return httpx.post(f"{service_url}/api/jobs/jsearch", json={"jobTitle": "status check"})

    failed = search()
    assert failed.status_code == 502, failed.text
    assert failed.json()["error"]["code"] == "upstream_malformed_response"
    again = search()  # not served "no jobs" from the cache: the upstream is asked again
    assert again.status_code == 200
    assert again.headers["x-cache"] == "miss"
    assert again.json()["total"] == 15
    assert fakes.jsearch.calls == 2
