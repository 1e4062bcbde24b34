"""The console script serves the app from environment settings."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from harness.processes import run_service_process


def test_jobsearch_api_serves_health_with_no_configuration(tmp_path: Path) -> None:
    with run_service_process({}, log_path=tmp_path / "log") as (url, _):
        assert httpx.get(f"{url}/health").json() == {"status": "healthy"}
        assert httpx.get(f"{url}/ready").status_code == 503


def test_sigterm_lets_the_process_exit_cleanly(tmp_path: Path) -> None:
    with run_service_process({"WORKERS": "2"}, log_path=tmp_path / "log") as (url, process):
        assert httpx.get(f"{url}/metrics").status_code == 200
        process.terminate()
        assert process.wait(timeout=30) == 0
    assert "Finished server process" in (tmp_path / "log").read_text()


def _client_ips_seen(tmp_path: Path, forwarded_allow_ips: str) -> set[str]:
    log_path = tmp_path / f"log-{forwarded_allow_ips}"
    env = {"FORWARDED_ALLOW_IPS": forwarded_allow_ips}
    with run_service_process(env, log_path=log_path) as (url, _):
        httpx.get(f"{url}/health", headers={"X-Forwarded-For": "203.0.113.9"})
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    return {line["client_ip"] for line in lines if line.get("path") == "/health"}


def test_forwarded_for_is_trusted_only_from_the_allowed_proxies(tmp_path: Path) -> None:
    assert "203.0.113.9" in _client_ips_seen(tmp_path, "127.0.0.1")
    assert _client_ips_seen(tmp_path, "10.231.0.2") == {"127.0.0.1"}
