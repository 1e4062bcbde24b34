"""Prometheus metrics.

With several uvicorn workers, each is its own process: the CLI then sets
PROMETHEUS_MULTIPROC_DIR so that /metrics aggregates all of them. The health
gauges count live workers only (`livemin`, `livemax`): before each collection
the gauges of workers that have died are removed, so that a worker killed while
its circuit was open, or its database down, does not report that for good.
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

HTTP_REQUESTS = Counter(
    "jobsearch_http_requests_total",
    "HTTP requests answered, by route template and status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "jobsearch_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
UPSTREAM_CALLS = Counter(
    "jobsearch_upstream_requests_total",
    "Attempts made to a paid job API, by source and outcome.",
    ["source", "outcome"],
)
CACHE_LOOKUPS = Counter(
    "jobsearch_cache_lookups_total",
    "Search cache lookups, by source and result (hit, miss, coalesced, bypass).",
    ["source", "result"],
)
UPSTREAM_QUOTA_REMAINING = Gauge(
    "jobsearch_upstream_quota_remaining",
    "Requests left on the upstream plan, as the upstream last reported it.",
    ["source"],
    multiprocess_mode="mostrecent",
)
UPSTREAM_BUDGET_REMAINING = Gauge(
    "jobsearch_upstream_budget_remaining",
    "Upstream calls left in today's (UTC) budget of a source, as this service last counted "
    "them; only sources with a budget (JSEARCH_DAILY_BUDGET, THEIRSTACK_DAILY_BUDGET).",
    ["source"],
    multiprocess_mode="mostrecent",
)
CIRCUIT_OPEN = Gauge(
    "jobsearch_upstream_circuit_open",
    "1 while the circuit breaker of a source is open.",
    ["source"],
    multiprocess_mode="livemax",
)
DATABASE_UP = Gauge(
    "jobsearch_database_up",
    "1 when the last use of the cache database succeeded.",
    multiprocess_mode="livemin",
)


def forget_dead_workers(directory: str) -> None:
    """Removes the live gauges of worker processes that no longer run.

    Uvicorn's supervisor restarts a dead worker without telling prometheus_client
    (mark_process_dead), so any worker does it here, from the files' pids.
    """
    pids = {
        int(pid)
        for path in Path(directory).glob("gauge_live*_*.db")
        for pid in (path.stem.rsplit("_", 1)[-1],)
        if pid.isdigit()
    }
    for pid in pids - {os.getpid()}:
        if not _running(pid):
            mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    try:  # a zombie has died, its parent has not reaped it yet
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def render_latest() -> tuple[bytes, str]:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        forget_dead_workers(directory)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
