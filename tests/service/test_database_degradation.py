"""The cache database goes down and comes back: searches keep working, /ready tracks it.

This test starts a PostgreSQL server of its own (initdb into a temporary
directory), so that it can really stop it without touching the machine's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from infra import migrations
from tests.conftest import ServiceRunner
from tests.fakes.upstreams import FakeUpstreams
from tests.support.postgres import PrivateCluster, create_supabase_roles, private_cluster
from tests.support.servers import free_port


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    with private_cluster(free_port()) as running:
        create_supabase_roles(running.admin_url)
        migrations.apply(running.admin_url)
        yield running


def wait_for_ready_status(url: str, wanted: str, timeout: float = 20) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    body: dict[str, object] = {}
    while time.monotonic() < deadline:
        body = httpx.get(f"{url}/ready", timeout=5).json()
        if body["status"] == wanted:
            return body
        time.sleep(0.2)
    raise AssertionError(f"/ready never became {wanted}: {body}")


def test_searches_survive_a_database_outage_and_the_cache_recovers(
    cluster: PrivateCluster, run_service: ServiceRunner, fakes: FakeUpstreams
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
            assert body["checks"]["database"] == {"status": "down"}  # type: ignore[index]
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
