"""Structured access logs, and no secret in any log line, whatever goes wrong."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from harness.processes import run_service_process
from harness.servers import closed_port
from infra.standins.app import JSEARCH_KEY, THEIRSTACK_KEY, StandinState
from jobsearch.logging_setup import REDACTED, Redactor

DB_PASSWORD = "pg-password-Zq8kLm2"
REDIS_PASSWORD = "redis-password-Yt5vQ"
SENTRY_KEY = "0123456789abcdef0123456789abcdef"


def test_access_lines_carry_the_facts_and_no_secret_appears(
    tmp_path: Path, fakes: StandinState, fakes_url: str, app_database_url: str
) -> None:
    log_path = tmp_path / "service.log"
    user_and_host = app_database_url.split("://", 1)[1]
    user, host = user_and_host.split("@", 1)
    env = {
        "RAPID_API_KEY": JSEARCH_KEY,
        "THEIRSTACK_API_KEY": THEIRSTACK_KEY,
        "JSEARCH_BASE_URL": fakes_url,
        "THEIRSTACK_BASE_URL": fakes_url,
        # Trust auth ignores the password; the service still must never print it.
        "DATABASE_URL": f"postgresql://{user}:{DB_PASSWORD}@{host}",
        # AUTH fails against a Redis without a password: an error path with a secret in reach.
        "REDIS_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/7",
        "SENTRY_DSN": f"http://{SENTRY_KEY}@127.0.0.1:{closed_port()}/1",
        "LOG_LEVEL": "DEBUG",
        "UPSTREAM_TIMEOUT_SECONDS": "1",
    }
    with run_service_process(env, log_path=log_path) as (url, _):
        ok = httpx.post(
            f"{url}/api/jobs/jsearch",
            json={"jobTitle": "data engineer"},
            headers={"X-Request-ID": "trace-me-1"},
        )
        httpx.post(f"{url}/api/jobs/jsearch", json={"jobTitle": "data engineer"})
        fakes.theirstack.default = "server_error"
        httpx.post(f"{url}/api/jobs/theirstack", json={"jobTitle": "data engineer"})
        fakes.jsearch.default = "forbidden"
        httpx.post(f"{url}/api/jobs/jsearch", json={"jobTitle": "other"})
        httpx.post(f"{url}/api/jobs/jsearch", json={"jobTitle": ""})
        httpx.get(f"{url}/ready")
    assert ok.status_code == 200

    text = log_path.read_text()
    for secret in (JSEARCH_KEY, THEIRSTACK_KEY, DB_PASSWORD, REDIS_PASSWORD, SENTRY_KEY):
        assert secret not in text, f"a secret leaked into the logs: {secret[:6]}..."

    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert len(lines) == len(text.splitlines()), "every log line is one JSON object"
    access = [line for line in lines if line.get("event") == "request"]
    first = next(line for line in access if line["request_id"] == "trace-me-1")
    assert first["method"] == "POST"
    assert first["path"] == "/api/jobs/jsearch"
    assert first["status"] == 200
    assert first["source"] == "jsearch"
    assert first["cache"] == "miss"
    assert first["upstream_attempts"] == 1
    assert first["latency_ms"] > 0
    failed = next(line for line in access if line["source"] == "theirstack")
    assert failed["status"] == 502
    assert failed["upstream_attempts"] == 3


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("postgresql://app:s3cret@db:5432/x", f"postgresql://app:{REDACTED}@db:5432/x"),
        ("redis://:pw-123@cache:6379/0", f"redis://:{REDACTED}@cache:6379/0"),
        (
            f"https://{SENTRY_KEY}@o1.ingest.example.com/2",
            f"https://{REDACTED}@o1.ingest.example.com/2",
        ),
        ("key=known-secret-value here", f"key={REDACTED} here"),
    ],
)
def test_redactor_scrubs_urls_and_known_secrets(raw: str, expected: str) -> None:
    assert Redactor(["known-secret-value"]).scrub(raw) == expected


def test_redactor_scrubs_nested_values_and_secret_headers() -> None:
    event = {"headers": {"X-RapidAPI-Key": "abc", "accept": "json"}, "args": ["known-secret-value"]}
    scrubbed = Redactor(["known-secret-value"]).scrub(event)
    assert scrubbed == {
        "headers": {"X-RapidAPI-Key": REDACTED, "accept": "json"},
        "args": [REDACTED],
    }
