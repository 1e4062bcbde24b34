"""`ops migrations` against the machine's real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from harness.postgres import scratch_database
from harness.servers import closed_port
from infra import migrations
from tests.infra.ops.conftest import OpsRunner

ALL = [m.path.name for m in migrations.discover()]


@pytest.fixture
def empty_database() -> Iterator[str]:
    with scratch_database("jobsearch_ops") as url:
        yield url


def test_a_new_database_has_every_migration_pending(empty_database: str, ops: OpsRunner) -> None:
    result = ops("migrations", "status", "--database-url", empty_database, "--json")

    assert result.code == 0
    assert result.json()["applied"] == []
    assert result.json()["pending"] == ALL


def test_apply_then_status_shows_every_migration_applied(
    empty_database: str, ops: OpsRunner
) -> None:
    applied = ops("migrations", "apply", "--database-url", empty_database, "--json")
    assert applied.code == 0
    assert applied.json()["applied_now"] == ALL

    result = ops("migrations", "status", "--database-url", empty_database)

    assert result.code == 0
    assert f"{len(ALL)} applied, 0 pending" in result.out
    for name in ALL:
        assert f"applied  {name}" in result.out


def test_the_database_url_can_come_from_the_environment(
    empty_database: str, ops: OpsRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrations.apply(empty_database)
    monkeypatch.setenv("DATABASE_URL", empty_database)

    result = ops("migrations", "status", "--json")

    assert result.code == 0
    assert result.json()["pending"] == []


def test_the_password_is_never_printed(empty_database: str, ops: OpsRunner) -> None:
    # The machine's PostgreSQL trusts local connections, so any password logs in.
    with_password = empty_database.replace("postgres@", "postgres:s3cret-pa55word@")

    for flag in ((), ("--json",)):
        result = ops("migrations", "status", "--database-url", with_password, *flag)
        assert result.code == 0
        assert "s3cret-pa55word" not in result.out + result.err
        assert "postgres:[REDACTED]@" in result.out


def test_an_unreachable_database_is_one_line_without_the_password(ops: OpsRunner) -> None:
    url = f"postgresql://app:s3cret-pa55word@127.0.0.1:{closed_port()}/cache"

    result = ops("migrations", "status", "--database-url", url)

    assert result.code == 1
    assert result.out == ""
    assert result.error_line.startswith("ops: error: postgresql://app:[REDACTED]@127.0.0.1:")
    assert "s3cret-pa55word" not in result.err


def test_an_edited_migration_is_reported(empty_database: str, ops: OpsRunner) -> None:
    migrations.apply(empty_database)
    with psycopg.connect(empty_database, autocommit=True) as connection:
        connection.execute(
            f"update {migrations.CHECKSUM_TABLE} set checksum = 'edited' where version = %s",
            (ALL[0].partition("_")[0],),
        )

    result = ops("migrations", "status", "--database-url", empty_database)

    assert result.code == 1
    assert f"{ALL[0]} was edited after it was applied" in result.error_line


def test_no_database_at_all_says_how_to_give_one(
    ops: OpsRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)

    result = ops("migrations", "status")

    assert result.code == 1
    assert result.error_line == "ops: error: no database: pass --database-url or set DATABASE_URL"


def test_a_url_that_is_not_postgres_is_refused_by_name(ops: OpsRunner) -> None:
    result = ops("migrations", "status", "--database-url", "mysql://root@db/cache")

    assert result.code == 2
    assert "argument --database-url" in result.error_line
    assert "must be a postgresql://" in result.error_line
