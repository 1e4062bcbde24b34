"""HTTP probes of a running service: /health, /ready and /metrics, judged the way the alerts are."""

from __future__ import annotations

import argparse
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import ValidationError

from infra.alerts import ALERTS, HTTP_PROBES, Alert
from infra.ops.cli import OpsError
from infra.ops.report import Check
from jobsearch.contract import ConfiguredSource, ReadyChecks, ReadyResponse

TIMEOUT_SECONDS = 10.0


def base_url(value: str) -> str:
    """argparse type for --url: an http(s) URL with a host, without a trailing slash."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a URL like https://api.example.com or http://127.0.0.1:8080"
        )
    if parts.username or parts.password:
        raise argparse.ArgumentTypeError("the URL must not carry credentials")
    return value.strip().rstrip("/")


def tls_context(ca_file: str | None = None, *, verify: bool = True) -> ssl.SSLContext:
    if not verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as error:
        raise OpsError(f"--ca-file {ca_file}: cannot load certificates ({error})") from None


def client(ca_file: str | None = None, *, verify: bool = True) -> httpx.Client:
    # The system trust store (and SSL_CERT_FILE) rather than certifi's bundle:
    # a private CA installed on the machine is then trusted too.
    return httpx.Client(
        verify=tls_context(ca_file, verify=verify),
        timeout=httpx.Timeout(TIMEOUT_SECONDS),
        follow_redirects=False,
        headers={"User-Agent": "jobsearch-ops"},
        trust_env=False,
    )


@dataclass
class Fetched:
    response: httpx.Response
    elapsed_ms: float

    def json(self) -> Any:
        try:
            return self.response.json()
        except ValueError:
            return None


def fetch(http: httpx.Client, url: str) -> Fetched:
    """GET `url`, or raise OpsError saying in one line why it could not be reached."""
    started = time.monotonic()
    try:
        response = http.get(url)
    except httpx.TimeoutException:
        raise OpsError(f"cannot reach {url}: no answer within {TIMEOUT_SECONDS:g}s") from None
    except httpx.ConnectError as error:
        raise OpsError(f"cannot reach {url}: {_reason(error)}") from None
    except httpx.HTTPError as error:
        raise OpsError(f"cannot reach {url}: {_reason(error)}") from None
    return Fetched(response, round((time.monotonic() - started) * 1000, 1))


def _reason(error: Exception) -> str:
    text = str(error) or type(error).__name__
    if "Connection refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "unknown host"
    return text.splitlines()[0]


def health_check(fetched: Fetched) -> Check:
    response = fetched.response
    data = {"status_code": response.status_code, "elapsed_ms": fetched.elapsed_ms}
    # The JobSearchApiDown monitor's own assertions.
    if HTTP_PROBES["health"].passes(response.status_code, fetched.json()):
        return Check("health", "pass", f"200 healthy ({fetched.elapsed_ms:g} ms)", data)
    return Check(
        "health", "fail", f"GET /health answered {response.status_code}, not 200 healthy", data
    )


def ready_document(fetched: Fetched) -> ReadyResponse | str:
    """The /ready answer read by the service's own model, else why it is not one."""
    try:
        return ReadyResponse.model_validate_json(fetched.response.content)
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "the document"
        return f"{where}: {first['msg']}"


def readiness_check(fetched: Fetched) -> Check:
    response = fetched.response
    document = ready_document(fetched)
    if isinstance(document, str):
        return Check(
            "readiness",
            "fail",
            f"GET /ready answered {response.status_code} without the readiness document "
            f"({document})",
            {"status_code": response.status_code},
        )
    status = document.status
    checks = document.checks
    data = {
        "status_code": response.status_code,
        "status": status,
        "checks": checks.model_dump(mode="json"),
    }
    problems = readiness_problems(checks)
    if status == "ready" and response.status_code == 200:
        return Check("readiness", "pass", "ready", data)
    if status == "degraded" and response.status_code == 200:
        return Check("readiness", "warn", "degraded: " + "; ".join(problems or ["?"]), data)
    detail = f"{status} ({response.status_code})"
    if problems:
        detail += ": " + "; ".join(problems)
    return Check("readiness", "fail", detail, data)


def readiness_problems(checks: ReadyChecks) -> list[str]:
    problems = []
    if checks.database.status == "down":
        problems.append("cache database down")
    if checks.rate_limit_store.status == "down":
        problems.append("rate-limit store (Redis) down")
    if checks.quota.status != "ok":
        problems.append(f"paid quota {checks.quota.status}")
    if checks.budget.status == "exhausted":
        spent = [name for name, b in checks.budget.sources.items() if b.status == "exhausted"]
        problems.append(f"daily budget of paid calls spent ({', '.join(spent) or '?'})")
    configured = {
        name: source
        for name, source in checks.sources.items()
        if isinstance(source, ConfiguredSource)
    }
    if checks.sources and not configured:
        problems.append("no job source configured")
    for name, source in configured.items():
        if source.circuit != "closed":
            problems.append(f"{name} circuit {source.circuit}")
    return problems


def alerts_check(fetched: Mapping[str, Fetched], alerts: Sequence[Alert] = ALERTS) -> Check:
    """Which alerts an HTTP probe would raise now, judged by the monitors' own assertions
    (infra/alerts.py HTTP_PROBES) on the answers to their paths."""
    firing = []
    for alert in alerts:
        probe = HTTP_PROBES.get(alert.probe)
        answer = fetched.get(probe.path) if probe is not None else None
        if probe is None or answer is None:
            continue
        if not probe.passes(answer.response.status_code, answer.json()):
            firing.append(alert)
    data = {"firing": [alert.name for alert in firing]}
    if not firing:
        return Check("alerts", "pass", "no HTTP-probed alert would fire", data)
    detail = "would fire: " + ", ".join(f"{a.name} ({a.severity})" for a in firing)
    critical = any(alert.severity == "critical" for alert in firing)
    return Check("alerts", "fail" if critical else "warn", detail, data)
