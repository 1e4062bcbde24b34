"""The console script serves the app from environment settings."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.servers import run_service_process


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
