"""The cache table's SQL on a real Postgres: Supabase-safe, least privilege, cheap purges."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from harness.postgres import scratch_database, service_login_url
from infra import migrations


def test_anon_and_authenticated_cannot_read_or_write_the_cache(migrated_database: str) -> None:
    with psycopg.connect(migrated_database, autocommit=True) as connection:
        for role in ("anon", "authenticated"):
            connection.execute(f"set role {role}")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                connection.execute("select * from job_cache")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                connection.execute(
                    "insert into job_cache values "
                    "('jsearch', repeat('a', 64), '{}', '{}', now(), now())"
                )
            connection.execute("reset role")


def test_row_level_security_is_on_and_forced(migrated_database: str) -> None:
    with psycopg.connect(migrated_database) as connection:
        row = connection.execute(
            "select relrowsecurity, relforcerowsecurity from pg_class where relname = 'job_cache'"
        ).fetchone()
    assert row == (True, True)


def test_the_service_role_can_use_the_cache_and_nothing_more(migrated_database: str) -> None:
    app_url = service_login_url(migrated_database)
    with psycopg.connect(app_url, autocommit=True) as connection:
        connection.execute(
            "insert into job_cache (source, request_hash, request, response, expires_at) "
            "values ('theirstack', repeat('b', 64), '{}', '{}', now() + interval '1 hour') "
            "on conflict do nothing"
        )
        mine = "from job_cache where request_hash = repeat('b', 64)"
        assert connection.execute(f"select count(*) {mine}").fetchone() == (1,)
        connection.execute(f"delete {mine}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute("create table public.sneaky (id int)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute("drop table job_cache")
        for table in (migrations.HISTORY_TABLE, migrations.CHECKSUM_TABLE):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                connection.execute(f"select * from {table}")


def test_lookup_and_purge_are_served_by_indexes(migrated_database: str) -> None:
    with psycopg.connect(migrated_database) as connection:
        indexes = {
            row[0]: row[1]
            for row in connection.execute(
                "select indexname, indexdef from pg_indexes where tablename = 'job_cache'"
            )
        }
    assert "(source, request_hash)" in indexes["job_cache_pkey"]
    assert "(expires_at)" in indexes["job_cache_expires_at_idx"]


def test_constraints_refuse_bad_rows(migrated_database: str) -> None:
    with (
        psycopg.connect(migrated_database) as connection,
        pytest.raises(psycopg.errors.CheckViolation),
    ):
        connection.execute(
            "insert into job_cache (source, request_hash, request, response, expires_at) "
            "values ('linkedin', repeat('c', 64), '{}', '{}', now())"
        )


def test_runner_is_idempotent_and_refuses_an_edited_migration(tmp_path: Path) -> None:
    directory = tmp_path / "supabase" / "migrations"
    shutil.copytree(migrations.MIGRATIONS_DIR, directory)
    with scratch_database() as url:
        applied = migrations.apply(url, directory)
        assert applied == [path.name for path in sorted(directory.glob("*.sql"))]
        assert migrations.apply(url, directory) == []
        assert migrations.status(url, directory).pending == []

        first = sorted(directory.glob("*.sql"))[0]
        first.write_text(first.read_text() + "\n-- an innocent edit\n")
        with pytest.raises(migrations.MigrationError, match=first.name):
            migrations.apply(url, directory)

        (directory / "20991231000000_extra.sql").write_text("select 1;\n")
        first.write_text(first.read_text().removesuffix("\n-- an innocent edit\n"))
        assert migrations.status(url, directory).pending == ["20991231000000_extra.sql"]
