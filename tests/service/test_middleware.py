"""The outermost layer (middleware.py): what a client's request can put into the access log."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.support.processes import run_service_process


def test_a_long_path_is_logged_truncated(tmp_path: Path) -> None:
    log_path = tmp_path / "service.log"
    long_path = "/" + "a" * 20_000
    with run_service_process({"APP_ENV": "development"}, log_path=log_path) as (url, _):
        response = httpx.get(url + long_path, headers={"X-Request-ID": "long-path"})
    assert response.status_code == 404
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    access = next(line for line in lines if line.get("request_id") == "long-path")
    assert access["event"] == "request"
    assert len(access["path"]) <= 256 + 1  # and a mark that it was cut
    assert access["path"].startswith("/aaaa")
    assert len(json.dumps(access)) < 1000
