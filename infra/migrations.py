"""Versioned SQL migrations for the cache database (Supabase Postgres in the stacks).

Files are `service/migrations/NNNN_name.sql`. Each is applied once, in its own
transaction, and recorded with its SHA-256. A file edited after it was applied
is refused rather than silently skipped: the database would no longer match
the repository. Runs take an advisory lock, so two deploys cannot interleave.

Used by the Pulumi Database component, the local runner and `ops migrations`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "service" / "migrations"
HISTORY_TABLE = "jobsearch_schema_migrations"
_ADVISORY_LOCK_ID = 0x6A6F6273  # "jobs"
_FILE_NAME = re.compile(r"(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql")


class MigrationError(Exception):
    pass


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class MigrationStatus:
    applied: list[str]
    pending: list[str]


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.fullmatch(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        migrations.append(Migration(match["version"], match["name"], path))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a version number")
    return migrations


def _ensure_history(connection: psycopg.Connection[tuple[object, ...]]) -> None:
    connection.execute(
        f"""
        create table if not exists {HISTORY_TABLE} (
            version text primary key,
            name text not null,
            checksum text not null,
            applied_at timestamptz not null default now()
        )
        """
    )
    connection.execute(f"alter table {HISTORY_TABLE} enable row level security")


def _applied(connection: psycopg.Connection[tuple[object, ...]]) -> dict[str, str]:
    exists = connection.execute("select to_regclass(%s)", (HISTORY_TABLE,)).fetchone()
    if exists is None or exists[0] is None:
        return {}
    # HISTORY_TABLE is a constant of this module, never input.
    rows = connection.execute(f"select version, checksum from {HISTORY_TABLE}").fetchall()  # noqa: S608
    return {str(version): str(checksum) for version, checksum in rows}


def _check_unchanged(migrations: list[Migration], applied: dict[str, str]) -> None:
    for migration in migrations:
        recorded = applied.get(migration.version)
        if recorded is not None and recorded != migration.checksum:
            raise MigrationError(
                f"migration {migration.path.name} was edited after it was applied "
                f"(recorded sha256 {recorded[:12]}, file {migration.checksum[:12]}); "
                "add a new migration instead of editing an applied one"
            )


def status(database_url: str, directory: Path = MIGRATIONS_DIR) -> MigrationStatus:
    migrations = discover(directory)
    with psycopg.connect(database_url, connect_timeout=10) as connection:
        applied = _applied(connection)
    _check_unchanged(migrations, applied)
    return MigrationStatus(
        applied=[m.path.name for m in migrations if m.version in applied],
        pending=[m.path.name for m in migrations if m.version not in applied],
    )


def apply(database_url: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply the pending migrations; returns the names applied (empty when up to date)."""
    migrations = discover(directory)
    done: list[str] = []
    with psycopg.connect(database_url, connect_timeout=10, autocommit=True) as connection:
        connection.execute("select pg_advisory_lock(%s)", (_ADVISORY_LOCK_ID,))
        try:
            _ensure_history(connection)
            applied = _applied(connection)
            _check_unchanged(migrations, applied)
            for migration in migrations:
                if migration.version in applied:
                    continue
                with connection.transaction():
                    connection.execute(migration.sql.encode())
                    connection.execute(
                        f"insert into {HISTORY_TABLE} (version, name, checksum) "  # noqa: S608
                        "values (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                done.append(migration.path.name)
        finally:
            connection.execute("select pg_advisory_unlock(%s)", (_ADVISORY_LOCK_ID,))
    return done


def set_app_role_password(database_url: str, password: str) -> None:
    """Let the service's role log in, with a password that comes from a secret."""
    with psycopg.connect(database_url, connect_timeout=10, autocommit=True) as connection:
        connection.execute(
            sql.SQL("alter role jobsearch_app with login password {}").format(sql.Literal(password))
        )
