"""`ops diagnose --url U [--database]`: what a running service and its database look like.

--url: health, readiness (/ready read with the service's own ReadyResponse),
which alerts an HTTP probe would raise now (the monitors' assertions of
infra/alerts.py, applied to the same answers), the security headers, the TLS
certificate (for https), and for each job source its circuit, the quota the
upstream last reported and the calls it refused, from /ready and (when the URL
serves it) /metrics.

--database: the cache database, from the admin connection string in the
DATABASE_URL environment variable (never the command line, where `ps` shows
it): whether it answers, its migrations, then the Supabase CLI's
`supabase inspect db` for what an on-call engineer needs: cache hit rates
(db-stats), long-running queries, blocked queries and exclusive locks
(blocking, locks) and table bloat. The CLI gets the password in PGPASSWORD and
a DB_URL without it; that DB_URL is printed for running them by hand.

Exit 0 when nothing fails, 1 otherwise; warnings do not fail.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx
import psycopg

from infra import migrations
from infra.alerts import CERTIFICATE_DAYS
from infra.ops import probes
from infra.ops.cli import Command, OpsError
from infra.ops.metrics import Metrics, parse_metrics, series
from infra.ops.report import (
    Check,
    Verdict,
    check_lines,
    checks_as_json,
    emit,
    mask_database_url,
    scrub,
    worst,
)
from jobsearch.contract import (
    QUOTA_LOW_BELOW,
    SECURITY_HEADERS,
    ConfiguredSource,
    UnconfiguredSource,
)

HSTS = "Strict-Transport-Security"
# The setting that switches each source on (jobsearch.settings.Settings).
SOURCE_KEY_SETTINGS = {"jsearch": "RAPID_API_KEY", "theirstack": "THEIRSTACK_API_KEY"}
# The pinned Supabase CLI (tools/supabase-cli, `make install`), else one on PATH.
SUPABASE_CLI = (
    Path(__file__).resolve().parents[2] / "tools" / "supabase-cli" / "node_modules" / ".bin"
) / "supabase"
CLI_TIMEOUT_SECONDS = 60
# The `supabase inspect db` reports the checks read, run side by side.
INSPECTIONS = ("db-stats", "long-running-queries", "blocking", "locks", "bloat")
# The thresholds of `supabase inspect report`'s default rules: a cache hit rate
# below 94% (table or index), a relation more than 4x its expected size.
HIT_RATE_LOW_BELOW = 0.94
BLOAT_HIGH_ABOVE = 4.0


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        type=probes.base_url,
        default=None,
        help="the service's base URL, e.g. https://api.example.com or http://127.0.0.1:8080",
    )
    parser.add_argument(
        "--database",
        action="store_true",
        help="check the cache database named by the DATABASE_URL environment variable "
        "(migrations, and `supabase inspect db`: cache hit rates, long-running queries, "
        "locks, bloat)",
    )
    parser.add_argument(
        "--ca-file", help="PEM file of CA certificates to trust besides the system's"
    )


def run(args: argparse.Namespace) -> int:
    if not args.url and not args.database:
        raise OpsError("nothing to diagnose: pass --url URL, --database, or both")
    checks: list[Check] = []
    document: dict[str, Any] = {"url": args.url}
    lines = [f"diagnose {args.url}"] if args.url else []
    if args.url:
        checks += diagnose(args.url, ca_file=args.ca_file)
    if args.database:
        url = os.environ.get("DATABASE_URL")
        if not url or not url.startswith(("postgresql://", "postgres://")):
            raise OpsError(
                "--database reads the admin connection string from DATABASE_URL: "
                'export DATABASE_URL="$(pulumi config get jobsearch:databaseUrl -s "$STACK")"'
            )
        db_url = url_without_password(url)
        document["db_url"] = db_url
        lines.append(f"database {db_url}")
        checks += database_checks(url)
    verdict = worst(checks)
    lines += [*check_lines(checks), f"verdict: {verdict}"]
    if args.database:
        lines.append(
            f"to run `supabase inspect db ...` or psql yourself: export DB_URL='{db_url}' "
            "(password from PGPASSFILE or PGPASSWORD)"
        )
    emit(args, {**document, "verdict": verdict, "checks": checks_as_json(checks)}, lines)
    return 1 if verdict == "fail" else 0


def url_without_password(url: str) -> str:
    """The connection string for psql and the Supabase CLI, which read the password from
    PGPASSFILE or PGPASSWORD: nothing secret on a command line."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}{host}{port}"))


def database_checks(url: str) -> list[Check]:
    """The database answers, its migrations, then `supabase inspect db`."""
    password = unquote(urlsplit(url).password or "") or None
    try:
        status = migrations.status(url)
    except migrations.MigrationError as error:
        return [Check("database", "fail", str(error), {})]
    except psycopg.Error as error:
        text = str(error).strip()
        reason = scrub(text.splitlines()[0] if text else type(error).__name__, password)
        return [Check("database", "fail", f"{mask_database_url(url)}: {reason}", {})]
    data = {"applied": status.applied, "pending": status.pending, "unknown": status.unknown}
    detail = f"answers; {len(status.applied)} migrations applied"
    verdict: Verdict = "pass"
    if status.pending or status.unknown:
        verdict = "warn"
        detail += f", pending: {', '.join(status.pending) or 'none'}"
        if status.unknown:
            detail += f", in the history but not here: {', '.join(status.unknown)}"
    checks = [Check("database", verdict, detail, data)]
    cli = supabase_cli()
    if cli is None:
        return [
            *checks,
            Check(
                "supabase inspect db",
                "warn",
                "the Supabase CLI is not installed (make install)",
                {},
            ),
        ]
    inspect = Inspector(cli, url_without_password(url), password)
    inspect.prefetch(INSPECTIONS)
    checks.append(cache_hit_check(inspect))
    checks.append(long_running_check(inspect))
    checks.append(locks_check(inspect))
    checks.append(bloat_check(inspect))
    return checks


def supabase_cli() -> str | None:
    if SUPABASE_CLI.exists():
        return str(SUPABASE_CLI)
    return shutil.which("supabase")


class InspectError(Exception):
    pass


class Inspector:
    """Runs `supabase inspect db NAME --db-url DB_URL --output-format json`; returns its rows."""

    def __init__(self, cli: str, db_url: str, password: str | None) -> None:
        self.cli = cli
        self.db_url = db_url
        self.password = password
        self._done: dict[str, list[dict[str, Any]] | InspectError] = {}

    def prefetch(self, names: tuple[str, ...]) -> None:
        """Run these at once (each is a process and a connection); __call__ then answers."""

        def one(name: str) -> list[dict[str, Any]] | InspectError:
            try:
                return self.run(name)
            except InspectError as error:
                return error

        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            self._done.update(zip(names, pool.map(one, names), strict=True))

    def __call__(self, name: str) -> list[dict[str, Any]]:
        done = self._done.get(name)
        if isinstance(done, InspectError):
            raise done
        return done if done is not None else self.run(name)

    def run(self, name: str) -> list[dict[str, Any]]:
        env = {**os.environ, "DO_NOT_TRACK": "1"}
        if self.password:
            env["PGPASSWORD"] = self.password
        argv = [self.cli, "inspect", "db", name, "--db-url", self.db_url]
        try:
            done = subprocess.run(
                [*argv, "--output-format", "json"],
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=CLI_TIMEOUT_SECONDS,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise InspectError(f"supabase inspect db {name}: {error}") from None
        try:
            document = json.loads(done.stdout)
        except json.JSONDecodeError:
            document = None
        if done.returncode != 0 or not isinstance(document, dict) or "rows" not in document:
            message = ""
            if isinstance(document, dict):
                message = str((document.get("error") or {}).get("message", ""))
            lines = (message or done.stderr or done.stdout).strip().splitlines()
            raise InspectError(
                scrub(lines[-1] if lines else f"exit {done.returncode}", self.password)
            )
        rows = document["rows"]
        return [row for row in rows if isinstance(row, dict)]


def _rate(value: object) -> float | None:
    try:
        return float(str(value))
    except ValueError:
        return None  # "N/A": no reads since the statistics were reset


def cache_hit_check(inspect: Inspector) -> Check:
    name = "cache hit rate"
    try:
        rows = inspect("db-stats")
    except InspectError as error:
        detail = f"`supabase inspect db db-stats` failed: {error}"
        if "pg_stat_statements" in str(error):
            detail += " (it needs the pg_stat_statements extension, which Supabase has)"
        return Check(name, "warn", detail, {})
    row = rows[0] if rows else {}
    rates = {kind: _rate(row.get(f"{kind}_hit_rate")) for kind in ("table", "index")}
    data = {f"{kind}_hit_rate": rate for kind, rate in rates.items()}
    shown = ", ".join(
        f"{kind} {'n/a' if rate is None else f'{rate:.0%}'}" for kind, rate in rates.items()
    )
    low = [kind for kind, rate in rates.items() if rate is not None and rate < HIT_RATE_LOW_BELOW]
    if low:
        detail = f"{shown}; below {HIT_RATE_LOW_BELOW:.0%}: reads go to disk (a bigger instance?)"
        return Check(name, "warn", detail, data)
    return Check(name, "pass", shown, data)


def long_running_check(inspect: Inspector) -> Check:
    name = "long-running queries"
    try:
        rows = inspect("long-running-queries")
    except InspectError as error:
        return Check(
            name, "warn", f"`supabase inspect db long-running-queries` failed: {error}", {}
        )
    if not rows:
        return Check(name, "pass", "none running over 5 minutes", {"count": 0})
    top = rows[0]
    query = " ".join(str(top.get("query", "")).split())[:80]
    detail = (
        f"{len(rows)} over 5 minutes; longest pid {top.get('pid')} for {top.get('duration')}: "
        f"{query} (end it: select pg_cancel_backend(PID))"
    )
    return Check(name, "warn", detail, {"count": len(rows), "rows": rows})


def locks_check(inspect: Inspector) -> Check:
    name = "locks"
    try:
        blocked = inspect("blocking")
        locks = inspect("locks")
    except InspectError as error:
        return Check(name, "warn", f"`supabase inspect db blocking/locks` failed: {error}", {})
    # Every transaction holds an exclusive lock on its own id; those name no relation.
    on_tables = sorted(
        {str(row.get("relname")) for row in locks if row.get("relname") not in (None, "null")}
    )
    data = {"blocked": len(blocked), "exclusive_locks_on": on_tables}
    if blocked:
        first = blocked[0]
        detail = (
            f"{len(blocked)} queries blocked; pid {first.get('blocking_pid')} blocks "
            f"pid {first.get('blocked_pid')} for {first.get('blocked_duration')}"
        )
        return Check(name, "warn", detail, data)
    if on_tables:
        return Check(name, "warn", f"exclusive locks on {', '.join(on_tables)}", data)
    return Check(name, "pass", "no blocked queries, no exclusive locks on tables", data)


def bloat_check(inspect: Inspector) -> Check:
    name = "bloat"
    try:
        rows = inspect("bloat")
    except InspectError as error:
        return Check(name, "warn", f"`supabase inspect db bloat` failed: {error}", {})
    bloated = [row for row in rows if (_rate(row.get("bloat")) or 0.0) > BLOAT_HIGH_ABOVE]
    data = {"bloated": bloated}
    if bloated:
        shown = ", ".join(
            f"{row.get('name')} {row.get('bloat')}x ({row.get('waste')})" for row in bloated
        )
        return Check(name, "warn", f"{shown}; run VACUUM (ANALYZE) on it", data)
    top = rows[0] if rows else None
    detail = (
        "nothing estimated"
        if top is None
        else f"highest {top.get('name')} {top.get('bloat')}x ({top.get('waste')})"
    )
    return Check(name, "pass", detail, data)


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
        checks.append(probes.alerts_check({"/health": health, "/ready": ready}))
        metrics_check, metrics = fetch_metrics(http, url)
        checks.append(metrics_check)
    document = probes.ready_document(ready)
    if not isinstance(document, str):
        # /ready states its threshold (checks.quota.low_below).
        low_below = document.checks.quota.low_below
        checks.extend(source_checks(document.checks.sources, metrics, low_below=low_below))
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


def source_checks(
    sources: Mapping[str, ConfiguredSource | UnconfiguredSource],
    metrics: Metrics | None,
    *,
    low_below: int = QUOTA_LOW_BELOW,
) -> list[Check]:
    checks = []
    for name, source in sorted(sources.items()):
        label = f"source {name}"
        if not isinstance(source, ConfiguredSource):
            setting = SOURCE_KEY_SETTINGS.get(name, "its API key setting")
            checks.append(Check(label, "warn", f"off: {setting} is not set", {"configured": False}))
            continue
        circuit = str(source.circuit)
        if circuit == "closed" and series(metrics, "jobsearch_upstream_circuit_open", source=name):
            circuit = "open"  # another worker's breaker
        quota = series(metrics, "jobsearch_upstream_quota_remaining", source=name)
        if quota is None and source.quota_remaining is not None:
            quota = float(source.quota_remaining)
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


COMMAND = Command(
    "diagnose",
    help="check a running service: health, readiness, headers, TLS, upstream quota",
    description=__doc__,
    arguments=_arguments,
    json=True,
    run=run,
)
