"""HTTP probes of a running service: /health, /ready and /metrics, judged the way the alerts are."""

from __future__ import annotations

import argparse
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from infra.ops.cli import OpsError
from infra.ops.report import Check

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
    body = fetched.json()
    data = {"status_code": response.status_code, "elapsed_ms": fetched.elapsed_ms}
    if response.status_code == 200 and isinstance(body, dict) and body.get("status") == "healthy":
        return Check("health", "pass", f"200 healthy ({fetched.elapsed_ms:g} ms)", data)
    return Check(
        "health", "fail", f"GET /health answered {response.status_code}, not 200 healthy", data
    )


def readiness_check(fetched: Fetched) -> Check:
    response = fetched.response
    body = fetched.json()
    if not isinstance(body, dict) or not isinstance(body.get("checks"), dict):
        return Check(
            "readiness",
            "fail",
            f"GET /ready answered {response.status_code} without the readiness document",
            {"status_code": response.status_code},
        )
    status = str(body.get("status"))
    checks: dict[str, Any] = body["checks"]
    data = {"status_code": response.status_code, "status": status, "checks": checks}
    problems = readiness_problems(checks)
    if status == "ready" and response.status_code == 200:
        return Check("readiness", "pass", "ready", data)
    if status == "degraded" and response.status_code == 200:
        return Check("readiness", "warn", "degraded: " + "; ".join(problems or ["?"]), data)
    detail = f"{status} ({response.status_code})"
    if problems:
        detail += ": " + "; ".join(problems)
    return Check("readiness", "fail", detail, data)


def readiness_problems(checks: Mapping[str, Any]) -> list[str]:
    problems = []
    database = checks.get("database") or {}
    if database.get("status") == "down":
        problems.append("cache database down")
    store = checks.get("rate_limit_store") or {}
    if store.get("status") == "down":
        problems.append("rate-limit store (Redis) down")
    quota = checks.get("quota") or {}
    if quota.get("status") not in (None, "ok"):
        problems.append(f"paid quota {quota.get('status')}")
    budget = checks.get("budget") or {}
    if budget.get("status") == "exhausted":
        spent = [
            name
            for name, info in (budget.get("sources") or {}).items()
            if isinstance(info, dict) and info.get("status") == "exhausted"
        ]
        problems.append(f"daily budget of paid calls spent ({', '.join(spent) or '?'})")
    sources: Mapping[str, Any] = checks.get("sources") or {}
    configured = {name: info for name, info in sources.items() if info.get("configured")}
    if sources and not configured:
        problems.append("no job source configured")
    for name, info in configured.items():
        circuit = info.get("circuit", "closed")
        if circuit != "closed":
            problems.append(f"{name} circuit {circuit}")
    return problems
