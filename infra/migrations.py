"""Versioned SQL migrations for the cache database (Supabase Postgres in the stacks).

Files follow the Supabase CLI's layout and naming:
`service/supabase/migrations/<timestamp>_<name>.sql`, so `supabase --workdir service`
(`db push`, `migration list`) works on the same files. Each is applied once, in
its own transaction, and recorded where the Supabase CLI and Studio read the
history: `supabase_migrations.schema_migrations`. A migration `supabase db push`
applied is seen here as applied and never run twice.

What the CLI lacks is kept here: the SHA-256 of each applied file, in a schema
of its own (`jobsearch_migrations`, no privileges for `public`, `anon` or
`authenticated`, row level security forced). A file edited after it was
applied is refused rather than silently skipped: the database would no longer
match the repository. Runs take an advisory lock, so two deploys cannot
interleave. A database migrated under the old history table
(`public.jobsearch_schema_migrations`, files named NNNN_name.sql) is carried
over on the first run: nothing is applied twice, and the old table is dropped.

Used by the Pulumi Database component, the local runner and `ops migrations`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from infra.config.database import APP_ROLE

# The Supabase CLI's project directory (`supabase --workdir service ...`).
SUPABASE_WORKDIR = Path(__file__).resolve().parent.parent / "service"
MIGRATIONS_DIR = SUPABASE_WORKDIR / "supabase" / "migrations"
# Where the Supabase CLI and Studio read which migrations a database has.
HISTORY_TABLE = "supabase_migrations.schema_migrations"
# Our checksums, out of reach of Supabase's public roles.
CHECKSUM_SCHEMA = "jobsearch_migrations"
CHECKSUM_TABLE = f"{CHECKSUM_SCHEMA}.checksums"
# The history before the Supabase layout: (version NNNN, name, checksum).
LEGACY_HISTORY_TABLE = "public.jobsearch_schema_migrations"
SUPABASE_PUBLIC_ROLES = ("anon", "authenticated")
_ADVISORY_LOCK_ID = 0x6A6F6273  # "jobs"
_FILE_NAME = re.compile(r"(?P<version>\d{14})_(?P<name>[a-z0-9_]+)\.sql")

Connection = psycopg.Connection[tuple[object, ...]]


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
    # Versions in the database's history with no file here (pushed from elsewhere).
    unknown: list[str] = field(default_factory=list)


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.fullmatch(path.name)
        if match is None:
            raise MigrationError(
                f"{path.name}: migration files are named <timestamp>_<name>.sql "
                "(14 digits, UTC, as `supabase migration new` makes them)"
            )
        migrations.append(Migration(match["version"], match["name"], path))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a version number")
    return migrations


def _exists(connection: Connection, table: str) -> bool:
    row = connection.execute("select to_regclass(%s)", (table,)).fetchone()
    return row is not None and row[0] is not None


def _ensure_history(connection: Connection) -> None:
    # The Supabase CLI creates its history table with these same statements.
    connection.execute("create schema if not exists supabase_migrations")
    connection.execute(
        f"create table if not exists {HISTORY_TABLE} (version text not null primary key)"
    )
    connection.execute(f"alter table {HISTORY_TABLE} add column if not exists statements text[]")
    connection.execute(f"alter table {HISTORY_TABLE} add column if not exists name text")
    connection.execute(f"create schema if not exists {CHECKSUM_SCHEMA}")
    connection.execute(
        f"""
        create table if not exists {CHECKSUM_TABLE} (
            version text primary key,
            name text not null,
            checksum text not null,
            applied_at timestamptz not null default now()
        )
        """
    )
    connection.execute(f"alter table {CHECKSUM_TABLE} enable row level security")
    connection.execute(f"alter table {CHECKSUM_TABLE} force row level security")
    # Supabase's default privileges may grant new tables to anon and authenticated.
    grantees = ["public"]
    for role in SUPABASE_PUBLIC_ROLES:
        if connection.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone():
            grantees.append(role)
    for grantee in grantees:
        connection.execute(f"revoke all on schema {CHECKSUM_SCHEMA} from {grantee}")
        connection.execute(f"revoke all on table {CHECKSUM_TABLE} from {grantee}")
        connection.execute(f"revoke all on table {HISTORY_TABLE} from {grantee}")


def _legacy(connection: Connection, migrations: list[Migration]) -> dict[str, str]:
    """The old history, by the versions of today's files: {version: checksum}."""
    if not _exists(connection, LEGACY_HISTORY_TABLE):
        return {}
    by_name = {m.name: m for m in migrations}
    carried: dict[str, str] = {}
    rows = connection.execute(f"select version, name, checksum from {LEGACY_HISTORY_TABLE}")  # noqa: S608
    for version, name, checksum in rows.fetchall():
        migration = by_name.get(str(name))
        if migration is None:
            raise MigrationError(
                f"the old migration history records {version}_{name}.sql, and no file "
                f"under {MIGRATIONS_DIR.relative_to(SUPABASE_WORKDIR.parent)} is named "
                f"<timestamp>_{name}.sql"
            )
        carried[migration.version] = str(checksum)
    return carried


def _applied(connection: Connection, migrations: list[Migration]) -> dict[str, str | None]:
    """{version: recorded checksum, or None when applied by the Supabase CLI}."""
    applied: dict[str, str | None] = dict(_legacy(connection, migrations))
    if _exists(connection, HISTORY_TABLE):
        for (version,) in connection.execute(f"select version from {HISTORY_TABLE}").fetchall():  # noqa: S608
            applied.setdefault(str(version), None)
    if _exists(connection, CHECKSUM_TABLE):
        rows = connection.execute(f"select version, checksum from {CHECKSUM_TABLE}").fetchall()  # noqa: S608
        for version, checksum in rows:
            # Supabase's history decides what is applied (`supabase migration repair`
            # may have reverted one); our table only adds the checksum.
            if str(version) in applied:
                applied[str(version)] = str(checksum)
    return applied


def _check_unchanged(migrations: list[Migration], applied: dict[str, str | None]) -> None:
    for migration in migrations:
        recorded = applied.get(migration.version)
        if recorded is not None and recorded != migration.checksum:
            raise MigrationError(
                f"migration {migration.path.name} was edited after it was applied "
                f"(recorded sha256 {recorded[:12]}, file {migration.checksum[:12]}); "
                "add a new migration instead of editing an applied one"
            )


def _unknown(migrations: list[Migration], applied: dict[str, str | None]) -> list[str]:
    known = {m.version for m in migrations}
    return sorted(version for version in applied if version not in known)


def status(database_url: str, directory: Path = MIGRATIONS_DIR) -> MigrationStatus:
    migrations = discover(directory)
    with psycopg.connect(database_url, connect_timeout=10) as connection:
        applied = _applied(connection, migrations)
    _check_unchanged(migrations, applied)
    return MigrationStatus(
        applied=[m.path.name for m in migrations if m.version in applied],
        pending=[m.path.name for m in migrations if m.version not in applied],
        unknown=_unknown(migrations, applied),
    )


def _record(connection: Connection, migration: Migration, *, history: bool) -> None:
    if history:
        connection.execute(
            f"insert into {HISTORY_TABLE} (version, name, statements) values (%s, %s, %s) "  # noqa: S608
            "on conflict (version) do nothing",
            (migration.version, migration.name, [migration.sql]),
        )
    connection.execute(
        f"insert into {CHECKSUM_TABLE} (version, name, checksum) values (%s, %s, %s) "  # noqa: S608
        "on conflict (version) do update "
        "set name = excluded.name, checksum = excluded.checksum, applied_at = now()",
        (migration.version, migration.name, migration.checksum),
    )


def _carry_over_legacy(connection: Connection, migrations: list[Migration]) -> None:
    """Move the old history into Supabase's and ours, then drop it; applies nothing."""
    carried = _legacy(connection, migrations)
    if not carried and not _exists(connection, LEGACY_HISTORY_TABLE):
        return
    recorded: dict[str, str | None] = {**carried}
    _check_unchanged(migrations, recorded)
    for migration in migrations:
        if migration.version in carried:
            _record(connection, migration, history=True)
    connection.execute(f"drop table {LEGACY_HISTORY_TABLE}")


def apply(database_url: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply the pending migrations; returns the names applied (empty when up to date)."""
    migrations = discover(directory)
    done: list[str] = []
    with psycopg.connect(database_url, connect_timeout=10, autocommit=True) as connection:
        connection.execute("select pg_advisory_lock(%s)", (_ADVISORY_LOCK_ID,))
        try:
            with connection.transaction():
                _ensure_history(connection)
                _carry_over_legacy(connection, migrations)
            applied = _applied(connection, migrations)
            _check_unchanged(migrations, applied)
            unknown = _unknown(migrations, applied)
            if unknown:
                raise MigrationError(
                    f"the database's migration history has {', '.join(unknown)}, which "
                    f"{directory} lacks; add those files (`supabase migration fetch`) "
                    "before deploying"
                )
            for migration in migrations:
                if migration.version in applied:
                    if applied[migration.version] is None:
                        # Applied by `supabase db push`: from now on, edits are caught.
                        with connection.transaction():
                            _record(connection, migration, history=False)
                    continue
                with connection.transaction():
                    connection.execute(migration.sql.encode())
                    _record(connection, migration, history=True)
                done.append(migration.path.name)
        finally:
            connection.execute("select pg_advisory_unlock(%s)", (_ADVISORY_LOCK_ID,))
    return done


def app_role_can_log_in(database_url: str) -> bool:
    """Whether the service's role exists and may log in (`rolcanlogin`)."""
    with psycopg.connect(database_url, connect_timeout=10) as connection:
        row = connection.execute(
            "select rolcanlogin from pg_roles where rolname = %s", (APP_ROLE,)
        ).fetchone()
    return row is not None and bool(row[0])


def set_app_role_password(database_url: str, password: str) -> None:
    """Let the service's role log in, with a password that comes from a secret.

    The server is sent a SCRAM-SHA-256 verifier computed here, never the password:
    the statement lands in pg_stat_statements and statement logs.
    """
    with psycopg.connect(database_url, connect_timeout=10, autocommit=True) as connection:
        verifier = connection.pgconn.encrypt_password(
            password.encode(), APP_ROLE.encode(), b"scram-sha-256"
        )
        connection.execute(
            sql.SQL("alter role {} with login password {}").format(
                sql.Identifier(APP_ROLE), sql.Literal(verifier.decode())
            )
        )
