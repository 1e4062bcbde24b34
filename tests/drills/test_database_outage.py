"""The cache database is stopped and restarted while searches keep coming.

A PostgreSQL server of the test's own (harness/postgres.py) backs the
service; a steady load of new searches (cache misses, so every one uses the
database) runs throughout. No search may fail, /ready must say "degraded"
while the database is down and "ready" once it is back, and the cache must
be written to again after the restart.
"""

from __future__ import annotations

import time
import uuid

import httpx
import psycopg

from harness.background import BackgroundLoad
from harness.load import Call
from harness.postgres import PrivateCluster
from harness.servers import wait_for_ready_status
from infra.standins.app import StandinState
from tests.conftest import ServiceRunner

CONCURRENCY = 8


def wait_for_ready(url: str, wanted: str, load: BackgroundLoad) -> None:
    def no_failed_search() -> None:
        assert load.failed == 0, load.tally.failures[:3]

    wait_for_ready_status(url, wanted, meanwhile=no_failed_search)


def rows_written_since(admin_url: str, moment: str) -> int:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        row = connection.execute(
            "select count(*) from job_cache where created_at > %s::timestamptz", (moment,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_no_search_fails_while_the_database_stops_and_comes_back(
    cluster: PrivateCluster, run_service: ServiceRunner, fakes: StandinState
) -> None:
    run = uuid.uuid4().hex[:8]
    # Every search new: each looks the database up and stores its result there.
    searches = [
        Call("POST", f"/api/jobs/{source}", {"jobTitle": f"outage {run} {n}"})
        for n in range(5000)
        for source in ("jsearch", "theirstack")
    ]
    with (
        run_service(database_url=cluster.admin_url) as url,
        BackgroundLoad(url, searches, concurrency=CONCURRENCY, max_seconds=120) as load,
    ):
        load.wait_for(40)
        wait_for_ready(url, "ready", load)
        assert load.caches()["miss"] > 0

        cluster.stop()
        try:
            stopped_at = load.total
            wait_for_ready(url, "degraded", load)
            load.wait_for(load.total + 60)
            during = load.caches()["bypass"]
            assert during > 0, "searches went on without the database"
        finally:
            cluster.start()
        restarted = httpx.get(f"{url}/ready", timeout=5).json()  # not yet "ready", perhaps
        with psycopg.connect(cluster.admin_url, autocommit=True) as connection:
            moment = connection.execute("select now()::text").fetchone()
        assert moment is not None

        wait_for_ready(url, "ready", load)
        # The breaker lets searches use the database again within its retry delay.
        deadline = time.monotonic() + 20
        while rows_written_since(cluster.admin_url, moment[0]) == 0:
            assert time.monotonic() < deadline, "no search was stored after the restart"
            time.sleep(0.2)
        load.wait_for(load.total + 40)

    tally = load.tally
    print(
        f"database outage drill: {tally.total} searches ({load.total - stopped_at} after the "
        f"stop), X-Cache {dict(tally.caches)}, /ready after restart: {restarted['status']}"
    )
    assert tally.failures == []
    assert set(tally.statuses) == {200}
    assert tally.caches["bypass"] >= 1
    assert tally.caches["miss"] >= 1
