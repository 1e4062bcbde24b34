"""`ops diagnose --database` against the machine's PostgreSQL, with the real Supabase CLI.

A scratch database for the plain checks; for cache hit rates and passwords, a
private cluster like Supabase's: pg_stat_statements preloaded in the
`extensions` schema, and a role that must give its password (SCRAM).
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from harness.postgres import PrivateCluster, scratch_database, supabase_like_cluster
from harness.servers import free_port
from infra import migrations
from infra.ops import diagnose
from tests.infra.ops.conftest import OpsRunner
from tests.support.supabase_cli import ensure_supabase_cli

ADMIN_PASSWORD = "Admin-Pass/word:Never-On-Argv-41"


@pytest.fixture(scope="module", autouse=True)
def cli() -> Path:
    return ensure_supabase_cli()


@pytest.fixture
def database() -> Iterator[str]:
    with scratch_database("jobsearch_diagnose") as url:
        migrations.apply(url)
        yield f"{url}?sslmode=disable"


@pytest.fixture(scope="module")
def supabase_like() -> Iterator[PrivateCluster]:
    with supabase_like_cluster(free_port()) as cluster:
        with psycopg.connect(cluster.admin_url, autocommit=True) as connection:
            connection.execute(
                sql.SQL("create role admin login superuser password {}").format(
                    sql.Literal(ADMIN_PASSWORD)
                )
            )
        migrations.apply(cluster.admin_url)
        hba = cluster.data_dir / "pg_hba.conf"
        hba.write_text("host all admin 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        with psycopg.connect(cluster.admin_url, autocommit=True) as connection:
            connection.execute("select pg_reload_conf()")
        yield cluster


def _admin_url(cluster: PrivateCluster, password: str = ADMIN_PASSWORD) -> str:
    quoted = password.replace("/", "%2F").replace(":", "%3A")
    return f"postgresql://admin:{quoted}@127.0.0.1:{cluster.port}/postgres?sslmode=disable"


def by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in document["checks"]}


def diagnose_database(ops: OpsRunner, monkeypatch: pytest.MonkeyPatch, url: str) -> Any:
    monkeypatch.setenv("DATABASE_URL", url)
    return ops("diagnose", "--database", "--json")


def test_a_healthy_database_passes_each_inspection(
    database: str, ops: OpsRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = diagnose_database(ops, monkeypatch, database)
    assert result.code == 0, result.out + result.err
    document = result.json()
    checks = by_name(document)
    assert checks["database"]["verdict"] == "pass"
    assert checks["database"]["data"]["pending"] == []
    assert checks["long-running queries"]["verdict"] == "pass"
    assert checks["locks"]["verdict"] == "pass"
    assert checks["bloat"]["verdict"] == "pass"
    # Without pg_stat_statements (this server) db-stats cannot answer; Supabase has it.
    assert checks["cache hit rate"]["verdict"] == "warn"
    assert "pg_stat_statements" in checks["cache hit rate"]["detail"]
    assert document["db_url"] == database


def test_cache_hit_rates_where_pg_stat_statements_is_loaded(
    supabase_like: PrivateCluster, ops: OpsRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(supabase_like.admin_url, autocommit=True) as connection:
        for _ in range(20):
            connection.execute("select count(*) from job_cache").fetchone()
    result = diagnose_database(ops, monkeypatch, _admin_url(supabase_like))
    check = by_name(result.json())["cache hit rate"]
    rates = [check["data"]["table_hit_rate"], check["data"]["index_hit_rate"]]
    assert all(isinstance(rate, float) and 0 < rate <= 1 for rate in rates), check
    # A cluster started a moment ago has read much from disk; either way it says so.
    low = min(rates) < diagnose.HIT_RATE_LOW_BELOW
    assert check["verdict"] == ("warn" if low else "pass")
    assert check["detail"].startswith(f"table {rates[0]:.0%}, index {rates[1]:.0%}")
    assert result.code == 0


def test_the_password_reaches_the_cli_only_through_its_environment(
    supabase_like: PrivateCluster,
    ops: OpsRunner,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    cli: Path,
) -> None:
    # A wrapper that records the CLI's arguments, then runs the real one.
    argv_log = tmp_path / "argv.log"
    wrapper = tmp_path / "supabase"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {argv_log}\nexec {cli} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(diagnose, "SUPABASE_CLI", wrapper)

    result = diagnose_database(ops, monkeypatch, _admin_url(supabase_like))

    assert result.code == 0, result.out
    checks = by_name(result.json())
    # The server demanded the password (SCRAM), and every inspection got in.
    assert {checks[name]["verdict"] for name in ("long-running queries", "locks", "bloat")} == {
        "pass"
    }
    recorded = argv_log.read_text()
    assert recorded.count("inspect db") == 5
    assert "Never-On-Argv" not in recorded
    assert "Never-On-Argv" not in result.out
    assert "PGPASSWORD" not in os.environ


def test_a_wrong_password_fails_without_showing_it(
    supabase_like: PrivateCluster, ops: OpsRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = diagnose_database(ops, monkeypatch, _admin_url(supabase_like, "Wrong-Pass-Word-77"))
    assert result.code == 1
    assert by_name(result.json())["database"]["verdict"] == "fail"
    assert "Wrong-Pass-Word-77" not in result.out + result.err


@contextlib.contextmanager
def _blocked_writer(url: str) -> Iterator[None]:
    """One transaction updated a cache row and holds it; another waits to update it."""
    row = "update job_cache set response = '{}' where request_hash = repeat('d', 64)"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            "insert into job_cache (source, request_hash, request, response, expires_at) "
            "values ('jsearch', repeat('d', 64), '{}', '{}', now())"
        )
    holder = psycopg.connect(url)
    holder.execute(row)
    waiting = threading.Event()

    def write() -> None:
        with psycopg.connect(url, autocommit=True) as connection:
            waiting.set()
            with contextlib.suppress(psycopg.Error):
                connection.execute(row)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    waiting.wait(5)
    time.sleep(0.5)
    try:
        yield
    finally:
        holder.rollback()
        holder.close()
        thread.join(10)


def test_a_blocked_query_is_shown_with_the_one_blocking_it(
    database: str, ops: OpsRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _blocked_writer(database):
        result = diagnose_database(ops, monkeypatch, database)
    locks = by_name(result.json())["locks"]
    assert locks["verdict"] == "warn"
    assert locks["data"]["blocked"] == 1
    assert "1 queries blocked" in locks["detail"]


def test_an_exclusive_lock_on_a_table_is_shown(
    database: str, ops: OpsRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(database) as holder:
        holder.execute("lock table job_cache in exclusive mode")
        result = diagnose_database(ops, monkeypatch, database)
        holder.rollback()
    locks = by_name(result.json())["locks"]
    assert locks["verdict"] == "warn"
    assert locks["data"]["exclusive_locks_on"] == ["job_cache"]


def test_a_bloated_table_is_named(
    database: str, ops: OpsRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute(
            "create table public.fat (id int, pad text) with (autovacuum_enabled = false)"
        )
        connection.execute(
            "insert into public.fat select g, repeat('x', 200) from generate_series(1, 200000) g"
        )
        connection.execute("delete from public.fat where id % 20 <> 0")
        connection.execute("analyze public.fat")
    bloat = by_name(diagnose_database(ops, monkeypatch, database).json())["bloat"]
    assert bloat["verdict"] == "warn"
    assert "public.fat" in bloat["detail"]
    assert "VACUUM" in bloat["detail"]


def test_a_pending_migration_warns(
    database: str, ops: OpsRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute(
            f"delete from {migrations.HISTORY_TABLE} where version = %s",
            (migrations.discover()[-1].version,),
        )
    result = diagnose_database(ops, monkeypatch, database)
    check = by_name(result.json())["database"]
    assert check["verdict"] == "warn"
    assert migrations.discover()[-1].path.name in check["detail"]


def test_database_without_database_url_says_how_to_set_it(
    ops: OpsRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = ops("diagnose", "--database")
    assert result.code == 1
    assert "DATABASE_URL" in result.err


def test_nothing_to_diagnose_is_refused(ops: OpsRunner) -> None:
    result = ops("diagnose")
    assert result.code == 1
    assert "--url URL, --database, or both" in result.err
