"""Every alert the stacks define, as plain data.

The monitoring component (infra/components/monitoring.py) turns these into
Checkly checks and Sentry alert rules; runbooks/README.md's alert index is
generated from them (infra/generated.py); tests/runbooks check that each alert
has a runbook named exactly after it, and that each runbook names an alert here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from jobsearch.contract import HealthResponse, ReadyResponse

# Days before a certificate expires when JobSearchTlsCertificateExpiring fires.
CERTIFICATE_DAYS = 14

Severity = Literal["critical", "warning"]
Probe = Literal[
    "health",
    "ready",
    "ready_body",
    "certificate",
    "quota",
    "budget",
    "error_rate",
    "replicas",
]
# The monitors that are not an HTTP probe (infra/components/monitoring.py).
OTHER_PROBES: tuple[Probe, ...] = ("certificate", "error_rate", "replicas")
# How long running replicas may stay below the desired count before
# JobSearchReplicasMissing fires.
REPLICAS_MISSING_MINUTES = 5

DEFAULT_RUNBOOK_BASE_URL = (
    "https://github.com/jobsearch-platform/jobsearch-platform/blob/main/runbooks"
)


def json_path(document: type[BaseModel], *fields: str) -> str:
    """The JSONPath of a field of the service's response model, e.g. `$.checks.quota.status`.

    Fails at import when the model has no such field, so a probe cannot assert a
    path the service stopped sending.
    """
    model: object = document
    for depth, field in enumerate(fields):
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise ValueError(f"{document.__name__}.{'.'.join(fields[:depth])} has no fields")
        if field not in model.model_fields:
            raise ValueError(f"{document.__name__} has no field {'.'.join(fields[: depth + 1])}")
        model = model.model_fields[field].annotation
    return "$." + ".".join(fields)


def _read(body: object, path: str) -> object:
    """The value at a `$.a.b` path of a JSON body; None when absent."""
    for field in path.removeprefix("$.").split("."):
        if not isinstance(body, dict):
            return None
        body = body.get(field)
    return body


@dataclass(frozen=True)
class Assertion:
    """One Checkly API-check assertion; `holds` judges a response the way Checkly does."""

    source: Literal["STATUS_CODE", "JSON_BODY"]
    comparison: Literal["EQUALS", "NOT_EQUALS"]
    target: str
    property: str = ""

    def holds(self, status_code: int, body: object) -> bool:
        found = status_code if self.source == "STATUS_CODE" else _read(body, self.property)
        equal = found is not None and str(found) == self.target
        return equal if self.comparison == "EQUALS" else not equal


@dataclass(frozen=True)
class HttpProbe:
    """A GET of the service and what its answer must satisfy for the alert to stay quiet."""

    path: str
    assertions: tuple[Assertion, ...]

    def passes(self, status_code: int, body: object) -> bool:
        return all(assertion.holds(status_code, body) for assertion in self.assertions)


# The one declaration of each HTTP probe: the monitors (infra/components/monitoring.py)
# create Checkly checks from it and `ops diagnose` judges a running service by it.
HTTP_PROBES: dict[Probe, HttpProbe] = {
    "health": HttpProbe(
        "/health",
        (
            Assertion("STATUS_CODE", "EQUALS", "200"),
            Assertion("JSON_BODY", "EQUALS", "healthy", json_path(HealthResponse, "status")),
        ),
    ),
    "ready": HttpProbe("/ready", (Assertion("STATUS_CODE", "EQUALS", "200"),)),
    "ready_body": HttpProbe(
        "/ready",
        (Assertion("JSON_BODY", "NOT_EQUALS", "degraded", json_path(ReadyResponse, "status")),),
    ),
    # "low" once a source reported fewer requests left than the service's threshold.
    "quota": HttpProbe(
        "/ready",
        (
            Assertion(
                "JSON_BODY", "EQUALS", "ok", json_path(ReadyResponse, "checks", "quota", "status")
            ),
        ),
    ),
    # "exhausted" once a configured source's budget for the UTC day is spent.
    "budget": HttpProbe(
        "/ready",
        (
            Assertion(
                "JSON_BODY",
                "NOT_EQUALS",
                "exhausted",
                json_path(ReadyResponse, "checks", "budget", "status"),
            ),
        ),
    ),
}


@dataclass(frozen=True)
class Alert:
    name: str
    summary: str
    severity: Severity
    probe: Probe
    description: str

    def runbook_url(self, base_url: str = DEFAULT_RUNBOOK_BASE_URL) -> str:
        return f"{base_url.rstrip('/')}/{self.name}.md"


ALERTS: tuple[Alert, ...] = (
    Alert(
        name="JobSearchApiDown",
        summary="GET /health on the public URL fails from two or more locations.",
        severity="critical",
        probe="health",
        description="The proxy or every service replica is down, or DNS/TLS is broken.",
    ),
    Alert(
        name="JobSearchApiNotReady",
        summary="GET /ready answers 503: no search can succeed.",
        severity="critical",
        probe="ready",
        description="No job source is configured on the running replicas.",
    ),
    Alert(
        name="JobSearchApiDegraded",
        summary="GET /ready reports degraded: the cache database, the rate-limit store "
        "or an upstream circuit is down.",
        severity="warning",
        probe="ready_body",
        description="Searches still work, but slower, more expensive, or from one source only.",
    ),
    Alert(
        name="JobSearchTlsCertificateExpiring",
        summary="The API's TLS certificate expires in less than 14 days.",
        severity="warning",
        probe="certificate",
        description="Caddy renews automatically 30 days ahead; renewal has been failing.",
    ),
    Alert(
        name="JobSearchUpstreamQuotaLow",
        summary="A paid job API reports fewer than 50 requests left on its plan.",
        severity="warning",
        probe="quota",
        description="When the quota reaches 0 that source answers 503 upstream_quota_exhausted.",
    ),
    Alert(
        name="JobSearchUpstreamBudgetExhausted",
        summary="A job source's daily budget of paid calls is spent: searches the cache cannot "
        "answer get 503 until midnight UTC.",
        severity="warning",
        probe="budget",
        description="JSEARCH_DAILY_BUDGET or THEIRSTACK_DAILY_BUDGET is used up for today "
        "(GET /ready: checks.budget.status exhausted); cache hits are still served.",
    ),
    Alert(
        name="JobSearchReplicasMissing",
        summary="Running replicas of a service stayed below the desired count for 5 minutes.",
        severity="warning",
        probe="replicas",
        description="A node is lost or drained, or an image crash-loops: the engine cannot "
        "run every task; the API still answers with the replicas left.",
    ),
    Alert(
        name="JobSearchApiHighErrorRate",
        summary="More than 20 server errors reported to Sentry in 5 minutes.",
        severity="critical",
        probe="error_rate",
        description="Unhandled exceptions in the service; users see 500 internal_error.",
    ),
)


def _every_probe_is_watched() -> None:
    for alert in ALERTS:
        if alert.probe not in HTTP_PROBES and alert.probe not in OTHER_PROBES:
            raise ValueError(f"{alert.name}: no monitor knows the probe {alert.probe!r}")


_every_probe_is_watched()


def alert_index() -> str:
    """The Markdown table of every alert, for runbooks/README.md (generated, make generate)."""
    rows = ["| Alert | Severity | Fires when |", "| --- | --- | --- |"]
    for alert in ALERTS:
        summary = alert.summary.replace("|", "\\|")
        rows.append(f"| [{alert.name}]({alert.name}.md) | {alert.severity} | {summary} |")
    return "\n".join(rows) + "\n"


def by_name(name: str) -> Alert:
    for alert in ALERTS:
        if alert.name == name:
            return alert
    raise KeyError(name)
