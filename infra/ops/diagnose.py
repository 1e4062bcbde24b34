"""`ops diagnose --url U`: what a running service looks like from the outside.

Health, readiness, the security headers, the TLS certificate (for https), and
for each job source its circuit, the quota the upstream last reported and the
calls it refused, from /ready and (when the URL serves it) /metrics. Exit 0
when nothing fails, 1 otherwise; warnings do not fail.
"""

from __future__ import annotations

import argparse
import socket
import ssl
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

from infra.alerts import CERTIFICATE_DAYS
from infra.ops import probes
from infra.ops.cli import OpsError
from infra.ops.report import (
    Check,
    Verdict,
    add_json_flag,
    check_lines,
    checks_as_json,
    emit,
    worst,
)
from jobsearch.middleware import SECURITY_HEADERS
from jobsearch.routers.health import QUOTA_LOW_BELOW

HSTS = "Strict-Transport-Security"
# The setting that switches each source on (jobsearch.settings.Settings).
SOURCE_KEY_SETTINGS = {"jsearch": "RAPID_API_KEY", "theirstack": "THEIRSTACK_API_KEY"}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "diagnose",
        help="check a running service: health, readiness, headers, TLS, upstream quota",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--url",
        required=True,
        type=probes.base_url,
        help="the service's base URL, e.g. https://api.example.com or http://127.0.0.1:8080",
    )
    parser.add_argument(
        "--ca-file", help="PEM file of CA certificates to trust besides the system's"
    )
    add_json_flag(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    checks = diagnose(args.url, ca_file=args.ca_file)
    verdict = worst(checks)
    emit(
        args,
        {"url": args.url, "verdict": verdict, "checks": checks_as_json(checks)},
        [f"diagnose {args.url}", *check_lines(checks), f"verdict: {verdict}"],
    )
    return 1 if verdict == "fail" else 0


def diagnose(url: str, *, ca_file: str | None = None) -> list[Check]:
    checks: list[Check] = []
    verified = True
    parts = urlsplit(url)
    if parts.scheme == "https":
        certificate = certificate_check(parts.hostname or "", parts.port or 443, ca_file)
        checks.append(certificate)
        # Go on without verification, read-only: an expired certificate is
        # exactly when the rest of the picture is needed.
        verified = bool(certificate.data.get("verified"))
    with probes.client(ca_file, verify=verified) as http:
        health = probes.fetch(http, f"{url}/health")
        checks.append(probes.health_check(health))
        checks.append(headers_check(health.response.headers, https=parts.scheme == "https"))
        ready = probes.fetch(http, f"{url}/ready")
        checks.append(probes.readiness_check(ready))
        metrics_check, metrics = fetch_metrics(http, url)
        checks.append(metrics_check)
    body = ready.json()
    readiness = body.get("checks", {}) if isinstance(body, dict) else {}
    # /ready states its threshold (checks.quota.low_below); an older one may not.
    low_below = (readiness.get("quota") or {}).get("low_below", QUOTA_LOW_BELOW)
    checks.extend(source_checks(readiness.get("sources", {}), metrics, low_below=int(low_below)))
    return checks


def certificate_check(
    host: str, port: int, ca_file: str | None, *, now: float | None = None
) -> Check:
    context = probes.tls_context(ca_file)
    try:
        with (
            socket.create_connection((host, port), timeout=probes.TIMEOUT_SECONDS) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            certificate = tls.getpeercert()
    except ssl.SSLCertVerificationError as error:
        return Check(
            "certificate",
            "fail",
            f"not trusted: {error.verify_message or error.reason}",
            {"verified": False},
        )
    except ssl.SSLError as error:
        return Check(
            "certificate", "fail", f"TLS handshake failed: {error.reason}", {"verified": False}
        )
    except OSError as error:
        raise OpsError(f"cannot reach {host}:{port}: {error.strerror or error}") from None
    if not certificate or "notAfter" not in certificate:
        return Check("certificate", "fail", "the server sent no certificate", {"verified": False})
    not_after = str(certificate["notAfter"])
    seconds_left = ssl.cert_time_to_seconds(not_after) - (now if now is not None else time.time())
    days_left = seconds_left / 86400
    data = {"verified": True, "not_after": not_after, "days_left": round(days_left, 1)}
    if days_left < CERTIFICATE_DAYS:
        detail = f"expires in {days_left:.1f} days ({not_after}); renewal is failing"
        return Check("certificate", "warn", detail, data)
    return Check("certificate", "pass", f"valid, {days_left:.0f} days left ({not_after})", data)


def headers_check(headers: httpx.Headers, *, https: bool) -> Check:
    expected = dict(SECURITY_HEADERS)
    missing = [name for name in expected if name not in headers]
    differing = [
        name for name, value in expected.items() if name in headers and headers[name] != value
    ]
    if https and HSTS not in headers:
        missing.append(HSTS)
    data = {"missing": missing, "differing": differing}
    if missing:
        return Check("security headers", "fail", "missing: " + ", ".join(missing), data)
    if differing:
        return Check("security headers", "warn", "changed: " + ", ".join(differing), data)
    count = len(expected) + (1 if https else 0)
    return Check("security headers", "pass", f"all {count} present", data)


Metrics = dict[str, dict[tuple[tuple[str, str], ...], float]]


def fetch_metrics(http: httpx.Client, url: str) -> tuple[Check, Metrics | None]:
    fetched = probes.fetch(http, f"{url}/metrics")
    status = fetched.response.status_code
    if status == 404:
        detail = "not served at this URL (the proxy keeps it private); figures from /ready"
        return Check("metrics", "pass", detail, {"status_code": status}), None
    if status != 200:
        return Check("metrics", "warn", f"GET /metrics answered {status}", {}), None
    try:
        metrics = parse_metrics(fetched.response.text)
    except ValueError as error:
        return Check("metrics", "warn", f"unreadable: {error}", {}), None
    return Check("metrics", "pass", f"{len(metrics)} series families read", {}), metrics


def parse_metrics(text: str) -> Metrics:
    """Prometheus text as {sample name: {sorted labels: value}}; ValueError if unreadable."""
    metrics: Metrics = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            metrics.setdefault(sample.name, {})[key] = float(sample.value)
    return metrics


def series(metrics: Metrics | None, name: str, **labels: str) -> float | None:
    """The sum of a sample's values over the series carrying these labels; None if none."""
    if metrics is None:
        return None
    wanted = set(labels.items())
    values = [v for key, v in metrics.get(name, {}).items() if wanted <= set(key)]
    return sum(values) if values else None


def source_checks(
    sources: Mapping[str, Any], metrics: Metrics | None, *, low_below: int = QUOTA_LOW_BELOW
) -> list[Check]:
    checks = []
    for name, info in sorted(sources.items()):
        label = f"source {name}"
        if not info.get("configured"):
            setting = SOURCE_KEY_SETTINGS.get(name, "its API key setting")
            checks.append(Check(label, "warn", f"off: {setting} is not set", {"configured": False}))
            continue
        circuit = str(info.get("circuit", "closed"))
        if circuit == "closed" and series(metrics, "jobsearch_upstream_circuit_open", source=name):
            circuit = "open"  # another worker's breaker
        quota = series(metrics, "jobsearch_upstream_quota_remaining", source=name)
        if quota is None and info.get("quota_remaining") is not None:
            quota = float(info["quota_remaining"])
        refused: dict[str, int] = {}
        for outcome in ("quota_exhausted", "rate_limited", "rejected"):
            count = series(
                metrics, "jobsearch_upstream_requests_total", source=name, outcome=outcome
            )
            if count:
                refused[outcome] = int(count)
        data = {
            "configured": True,
            "circuit": circuit,
            "quota_remaining": None if quota is None else int(quota),
            "refused": refused,
        }
        quota_text = (
            "quota unknown (no call since start)" if quota is None else f"{int(quota)} left"
        )
        notes = [f"circuit {circuit}", quota_text]
        notes += [f"{count} {outcome.replace('_', ' ')}" for outcome, count in refused.items()]
        verdict: Verdict = "pass"
        if circuit == "open" or quota == 0:
            verdict = "fail"
        elif circuit != "closed" or (quota is not None and quota < low_below) or refused:
            verdict = "warn"
        checks.append(Check(label, verdict, ", ".join(notes), data))
    return checks
