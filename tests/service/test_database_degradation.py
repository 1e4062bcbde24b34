"""The cache database goes down and comes back: searches keep working, /ready tracks it.

This test starts a PostgreSQL server of its own (initdb into a temporary
directory), so that it can really stop it without touching the machine's.
"""

from __future__ import annotations

import time

import httpx

from harness.postgres import PrivateCluster
from harness.servers import wait_for_ready_status
from infra.standins.app import StandinState
from tests.conftest import ServiceRunner


def test_searches_survive_a_database_outage_and_the_cache_recovers(
    cluster: PrivateCluster, run_service: ServiceRunner, fakes: StandinState
) -> None:
    def search(title: str) -> httpx.Response:
        return httpx.post(f"{url}/api/jobs/jsearch", json={"jobTitle": title}, timeout=30)

    with run_service(database_url=cluster.admin_url) as url:
        assert search("before outage").headers["x-cache"] == "miss"
        wait_for_ready_status(url, "ready")

        cluster.stop()
        try:
            during = [search(f"during outage {i}") for i in range(5)]
            assert [r.status_code for r in during] == [200] * 5
            assert {r.headers["x-cache"] for r in during} == {"bypass"}
            body = wait_for_ready_status(url, "degraded")
            assert body["checks"]["database"] == {"status": "down", "latency_ms": None}  # type: ignore[index]
            started = time.monotonic()
            search("still fast while down")
            assert time.monotonic() - started < 2.5
        finally:
            cluster.start()

        wait_for_ready_status(url, "ready")
        # Back to the shared cache: a miss is stored, and another replica would hit it.
        assert search("after outage").headers["x-cache"] == "miss"
    with run_service(database_url=cluster.admin_url) as other_replica:
        again = httpx.post(
            f"{other_replica}/api/jobs/jsearch", json={"jobTitle": "after outage"}, timeout=30
        )
    assert again.headers["x-cache"] == "hit"
