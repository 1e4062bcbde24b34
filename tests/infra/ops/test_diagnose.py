"""`ops diagnose` against the real service on 127.0.0.1, healthy and broken as alerts see it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from harness.servers import closed_port, serve_in_thread
from infra.alerts import CERTIFICATE_DAYS
from infra.ops.diagnose import source_checks
from infra.ops.probes import Fetched, alerts_check, readiness_check
from infra.standins.app import StandinState
from jobsearch.contract import ConfiguredSource
from tests.infra.ops.conftest import OpsRunner
from tests.infra.ops.services import make_certificates, serve_tls, service_process

SEARCH = {"jobTitle": "python developer", "city": "Austin", "country": "US"}


def by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in document["checks"]}


def test_a_healthy_service_passes_and_shows_the_quota_the_upstreams_reported(
    service: str, ops: OpsRunner
) -> None:
    for source in ("jsearch", "theirstack"):
        assert httpx.post(f"{service}/api/jobs/{source}", json=SEARCH).status_code == 200

    result = ops("diagnose", "--url", service, "--json")

    assert result.code == 0, result.out
    document = result.json()
    assert document["verdict"] == "pass"
    checks = by_name(document)
    assert checks["health"]["verdict"] == "pass"
    assert checks["readiness"]["verdict"] == "pass"
    assert checks["security headers"]["verdict"] == "pass"
    assert checks["metrics"]["verdict"] == "pass"
    assert checks["source jsearch"]["data"]["quota_remaining"] == 497
    assert checks["source jsearch"]["data"]["circuit"] == "closed"
    assert checks["source theirstack"]["verdict"] == "pass"


def test_human_output_names_every_check(service: str, ops: OpsRunner) -> None:
    result = ops("diagnose", "--url", service)

    assert result.code == 0
    for name in ("health", "readiness", "security headers", "source jsearch", "verdict: pass"):
        assert name in result.out
    assert "quota unknown" in result.out  # no search yet: nothing reported


def test_an_exhausted_quota_fails_the_source(
    service: str, fakes: StandinState, ops: OpsRunner
) -> None:
    fakes.jsearch.default = "quota"
    assert httpx.post(f"{service}/api/jobs/jsearch", json=SEARCH).status_code == 503

    result = ops("diagnose", "--url", service, "--json")

    assert result.code == 1
    jsearch = by_name(result.json())["source jsearch"]
    assert jsearch["verdict"] == "fail"
    assert jsearch["data"]["quota_remaining"] == 0
    assert jsearch["data"]["refused"]["quota_exhausted"] >= 1


def test_an_open_circuit_degrades_readiness_and_fails_the_source(
    service: str, fakes: StandinState, ops: OpsRunner
) -> None:
    fakes.jsearch.default = "server_error"
    for _ in range(3):
        httpx.post(f"{service}/api/jobs/jsearch", json=SEARCH, timeout=30)

    result = ops("diagnose", "--url", service, "--json")

    assert result.code == 1
    checks = by_name(result.json())
    assert checks["readiness"]["verdict"] == "warn"
    assert "jsearch circuit open" in checks["readiness"]["detail"]
    assert checks["source jsearch"]["verdict"] == "fail"
    assert checks["source theirstack"]["verdict"] == "pass"


def test_no_configured_source_fails_readiness(
    migrated_database: str, fakes_url: str, tmp_path: Path, ops: OpsRunner
) -> None:
    with service_process(
        migrated_database, fakes_url, tmp_path / "s.log", RAPID_API_KEY="", THEIRSTACK_API_KEY=""
    ) as url:
        result = ops("diagnose", "--url", url, "--json")

    assert result.code == 1
    checks = by_name(result.json())
    assert checks["readiness"]["verdict"] == "fail"
    assert "no job source configured" in checks["readiness"]["detail"]
    assert "RAPID_API_KEY" in checks["source jsearch"]["detail"]


def test_a_spent_daily_budget_degrades_readiness_and_says_which(
    migrated_database: str, fakes_url: str, tmp_path: Path, ops: OpsRunner
) -> None:
    with service_process(
        migrated_database, fakes_url, tmp_path / "s.log", JSEARCH_DAILY_BUDGET="1"
    ) as url:
        httpx.post(f"{url}/api/jobs/jsearch", json={"jobTitle": "budget drill"}, timeout=30)
        result = ops("diagnose", "--url", url, "--json")

    readiness = by_name(result.json())["readiness"]
    assert readiness["verdict"] == "warn"
    assert "daily budget of paid calls spent (jsearch)" in readiness["detail"]


def _bare_app() -> Starlette:
    """Answers like the service but sends none of its security headers."""

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "healthy"})

    async def ready(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ready", "checks": {"sources": {}}})

    return Starlette(routes=[Route("/health", health), Route("/ready", ready)])


def test_missing_security_headers_fail(ops: OpsRunner) -> None:
    with serve_in_thread(_bare_app(), lifespan="off") as url:
        result = ops("diagnose", "--url", url, "--json")

    assert result.code == 1
    headers = by_name(result.json())["security headers"]
    assert headers["verdict"] == "fail"
    assert "X-Content-Type-Options" in headers["data"]["missing"]
    assert "Content-Security-Policy" in headers["data"]["missing"]


def test_an_unreachable_url_is_one_clear_line_and_exit_1(ops: OpsRunner) -> None:
    url = f"http://127.0.0.1:{closed_port()}"

    result = ops("diagnose", "--url", url)

    assert result.code == 1
    assert result.out == ""
    assert result.error_line == f"ops: error: cannot reach {url}/health: connection refused"


@pytest.mark.parametrize("bad", ["api.example.com", "ftp://api.example.com", "https://"])
def test_a_bad_url_is_refused_by_name(ops: OpsRunner, bad: str) -> None:
    result = ops("diagnose", "--url", bad)

    assert result.code == 2
    assert "argument --url" in result.error_line
    assert "is not a URL like" in result.error_line


@pytest.fixture
def app_factory(make_settings: Callable[..., Any]) -> Callable[[], Any]:
    from jobsearch.main import create_app

    return lambda: create_app(make_settings())


@pytest.mark.parametrize(("days", "verdict"), [(90, "pass"), (CERTIFICATE_DAYS - 9, "warn")])
def test_certificate_expiry_is_read_over_tls(
    tmp_path: Path,
    app_factory: Callable[[], Any],
    ops_process: OpsRunner,
    days: int,
    verdict: str,
) -> None:
    certificates = make_certificates(tmp_path, days=days)
    with serve_tls(app_factory(), certificates) as url:
        result = ops_process("diagnose", "--url", url, "--ca-file", str(certificates.ca), "--json")

    checks = by_name(result.json())
    certificate = checks["certificate"]
    assert certificate["verdict"] == verdict
    assert days - 1 < certificate["data"]["days_left"] <= days
    assert checks["health"]["verdict"] == "pass"
    # The service alone sends no HSTS: the proxy adds it, and over https it is required.
    assert "Strict-Transport-Security" in checks["security headers"]["data"]["missing"]


def test_an_untrusted_certificate_fails_but_the_rest_is_still_checked(
    tmp_path: Path, app_factory: Callable[[], Any], ops_process: OpsRunner
) -> None:
    certificates = make_certificates(tmp_path, days=90)
    with serve_tls(app_factory(), certificates) as url:
        result = ops_process("diagnose", "--url", url, "--json")

    assert result.code == 1
    checks = by_name(result.json())
    assert checks["certificate"]["verdict"] == "fail"
    assert "not trusted" in checks["certificate"]["detail"]
    assert checks["health"]["verdict"] == "pass"


def test_a_missing_ca_file_is_named(ops: OpsRunner, tmp_path: Path) -> None:
    result = ops("diagnose", "--url", "https://127.0.0.1:1", "--ca-file", str(tmp_path / "no.pem"))

    assert result.code == 1
    assert "--ca-file" in result.error_line


@pytest.mark.parametrize(
    ("reported", "verdict"),
    [(None, "pass"), (500, "pass"), (49, "warn"), (0, "fail")],
)
def test_quota_thresholds_match_the_quota_alert(reported: int | None, verdict: str) -> None:
    sources = {"jsearch": _configured(reported)}

    [check] = source_checks(sources, metrics=None)

    assert check.verdict == verdict


def test_the_threshold_that_ready_states_wins() -> None:
    sources = {"jsearch": _configured(80)}

    [check] = source_checks(sources, metrics=None, low_below=100)

    assert check.verdict == "warn"


def _configured(quota_remaining: int | None) -> ConfiguredSource:
    return ConfiguredSource.model_validate(
        {
            "configured": True,
            "circuit": "closed",
            "quota_remaining": quota_remaining,
            "data": "live",
        }
    )


def _fetched(status_code: int, body: dict[str, Any]) -> Fetched:
    return Fetched(httpx.Response(status_code, json=body), elapsed_ms=1.0)


def _ready_body(**checks: str) -> dict[str, Any]:
    return {
        "status": checks.pop("status", "ready"),
        "checks": {name: {"status": value} for name, value in checks.items()},
    }


@pytest.mark.parametrize(
    ("ready", "firing", "verdict"),
    [
        (_fetched(200, _ready_body(quota="ok", budget="ok")), [], "pass"),
        (
            _fetched(200, _ready_body(status="degraded", quota="ok", budget="exhausted")),
            ["JobSearchApiDegraded", "JobSearchUpstreamBudgetExhausted"],
            "warn",
        ),
        (
            _fetched(200, _ready_body(quota="low", budget="ok")),
            ["JobSearchUpstreamQuotaLow"],
            "warn",
        ),
        (
            _fetched(503, _ready_body(status="unavailable", quota="ok", budget="ok")),
            ["JobSearchApiNotReady"],
            "fail",
        ),
    ],
)
def test_alerts_are_judged_by_the_monitors_own_assertions(
    ready: Fetched, firing: list[str], verdict: str
) -> None:
    health = _fetched(200, {"status": "healthy"})

    check = alerts_check({"/health": health, "/ready": ready})

    assert check.data["firing"] == firing
    assert check.verdict == verdict


def test_a_draining_health_answer_would_page() -> None:
    health = _fetched(503, {"status": "draining"})
    ready = _fetched(200, _ready_body(quota="ok", budget="ok"))

    check = alerts_check({"/health": health, "/ready": ready})

    assert check.data["firing"] == ["JobSearchApiDown"]
    assert check.verdict == "fail"


def test_a_ready_answer_the_model_refuses_names_the_field() -> None:
    check = readiness_check(_fetched(200, {"status": "ready", "checks": {"sources": {}}}))

    assert check.verdict == "fail"
    assert "without the readiness document (checked_at: Field required)" in check.detail
