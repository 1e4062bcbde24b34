"""Prometheus metrics.

With several uvicorn workers, each is its own process: the CLI then sets
PROMETHEUS_MULTIPROC_DIR so that /metrics aggregates all of them.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

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
CIRCUIT_OPEN = Gauge(
    "jobsearch_upstream_circuit_open",
    "1 while the circuit breaker of a source is open.",
    ["source"],
    multiprocess_mode="max",
)
DATABASE_UP = Gauge(
    "jobsearch_database_up",
    "1 when the last use of the cache database succeeded.",
    multiprocess_mode="min",
)


def render_latest() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
