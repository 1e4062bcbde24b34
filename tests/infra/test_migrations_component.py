"""The Database component's dynamic provider, against the machine's real PostgreSQL.

It is called the way the Pulumi engine calls it (check, diff, create, update,
delete), on scratch databases that have Supabase's roles and default grants.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dill  # type: ignore[import-untyped]
import psycopg
import pytest
from pulumi.dynamic.dynamic import serialize_provider

from harness.postgres import scratch_database
from infra import migrations
from infra.components.database import (
    DatabaseError,
    MigrationsProvider,
    app_database_url,
    migration_checksums,
)

PASSWORD = "Sc-ratch-App-Password/with:odd@chars"
FILES = sorted(path.name for path in migrations.MIGRATIONS_DIR.glob("*.sql"))
NEW = "20991231000000_cache_note.sql"


@pytest.fixture
def admin_url() -> Iterator[str]:
    with scratch_database("jobsearch_component") as url:
        yield url


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    """A copy of service/supabase/migrations that a test may add to or edit."""
    copy = tmp_path / "migrations"
    shutil.copytree(migrations.MIGRATIONS_DIR, copy)
    return copy


def inputs(admin_url: str, directory: Path, password: str = PASSWORD) -> dict[str, Any]:
    """The inputs the program gives the resource (Migrations in database.py)."""
    return {
        "database_url": admin_url,
        "app_password": password,
        "migrations": migration_checksums(directory),
    }


def history(admin_url: str) -> list[tuple[str, str]]:
    with psycopg.connect(admin_url) as connection:
        rows = connection.execute(
            f"select version, checksum from {migrations.CHECKSUM_TABLE} order by version"
        ).fetchall()
    return [(str(version), str(checksum)) for version, checksum in rows]


def scram_matches(admin_url: str, role: str, password: str) -> bool:
    """Whether the SCRAM verifier PostgreSQL stores for `role` is for `password`.

    (The machine's server trusts local connections, so logging in proves nothing
    about the password; the verifier does.)
    """
    with psycopg.connect(admin_url) as connection:
        row = connection.execute(
            "select rolpassword from pg_authid where rolname = %s", (role,)
        ).fetchone()
    assert row is not None
    assert row[0], f"{role} has no password"
    method, _, rest = str(row[0]).partition("$")
    assert method == "SCRAM-SHA-256"
    iterations_salt, _, keys = rest.partition("$")
    iterations, _, salt = iterations_salt.partition(":")
    stored_key = base64.b64decode(keys.partition(":")[0])
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(salt), int(iterations)
    )
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return hmac.compare_digest(hashlib.sha256(client_key).digest(), stored_key)


def test_create_applies_every_migration_and_lets_the_service_role_in(
    admin_url: str, directory: Path
) -> None:
    provider = MigrationsProvider(str(directory))
    result = provider.create(inputs(admin_url, directory))
    assert result.outs is not None
    assert result.outs["applied"] == FILES
    assert result.outs["applied_now"] == FILES
    assert history(admin_url) == [
        (name.partition("_")[0], checksum)
        for name, checksum in sorted(migration_checksums(directory).items())
    ]
    assert scram_matches(admin_url, "jobsearch_app", PASSWORD)
    assert not scram_matches(admin_url, "jobsearch_app", PASSWORD + "x")
    # The service's login is the app role, and it can use the cache table.
    app_url = app_database_url(admin_url + "?sslmode=disable", PASSWORD)
    assert app_url.startswith("postgresql://jobsearch_app:")
    with psycopg.connect(app_url, autocommit=True) as connection:
        assert connection.execute("select current_user").fetchone() == ("jobsearch_app",)
        connection.execute(
            "insert into job_cache (source, request_hash, request, response, expires_at) "
            "values ('jsearch', repeat('a', 64), '{}', '{\"jobs\": []}', now() + interval '1 hour')"
        )
        assert connection.execute("select count(*) from job_cache").fetchone() == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute("create table public.not_mine (id int)")


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_supabase_public_roles_stay_denied(admin_url: str, directory: Path, role: str) -> None:
    MigrationsProvider(str(directory)).create(inputs(admin_url, directory))
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f"set role {role}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute("select * from job_cache")


def test_a_second_run_changes_nothing(admin_url: str, directory: Path) -> None:
    provider = MigrationsProvider(str(directory))
    created = provider.create(inputs(admin_url, directory))
    assert created.outs is not None
    before = history(admin_url)
    assert provider.diff(created.id, created.outs, inputs(admin_url, directory)).changes is False
    updated = provider.update(created.id, created.outs, inputs(admin_url, directory))
    assert updated.outs is not None
    assert updated.outs["applied_now"] == []
    assert updated.outs["applied"] == FILES
    assert history(admin_url) == before


def test_preview_shows_a_new_migration_as_pending_and_up_applies_it(
    admin_url: str, directory: Path
) -> None:
    provider = MigrationsProvider(str(directory))
    created = provider.create(inputs(admin_url, directory))
    assert created.outs is not None
    new = directory / NEW
    new.write_text("comment on column public.job_cache.source is 'jsearch or theirstack';\n")
    planned = inputs(admin_url, directory)
    assert provider.pending(planned) == [NEW]
    assert provider.diff(created.id, created.outs, planned).changes is True
    updated = provider.update(created.id, created.outs, planned)
    assert updated.outs is not None
    assert updated.outs["applied_now"] == [NEW]
    assert provider.pending(planned) == []


def test_pending_migrations_show_even_when_the_files_did_not_change(
    admin_url: str, directory: Path
) -> None:
    # The database was restored from an old backup: the files are the same, the
    # schema is behind. Preview must still show work to do.
    provider = MigrationsProvider(str(directory))
    created = provider.create(inputs(admin_url, directory))
    assert created.outs is not None
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(
            f"delete from {migrations.HISTORY_TABLE} where version = %s",
            (FILES[1].partition("_")[0],),
        )
        connection.execute("drop policy jobsearch_app_all on public.job_cache")
    planned = inputs(admin_url, directory)
    assert provider.pending(planned) == [FILES[1]]
    assert provider.diff(created.id, created.outs, planned).changes is True


def test_an_edited_migration_is_refused_at_preview_and_at_up(
    admin_url: str, directory: Path
) -> None:
    provider = MigrationsProvider(str(directory))
    created = provider.create(inputs(admin_url, directory))
    assert created.outs is not None
    before = history(admin_url)
    edited = directory / FILES[0]
    edited.write_text(edited.read_text() + "\n-- an afterthought\n")
    planned = inputs(admin_url, directory)
    with pytest.raises(
        migrations.MigrationError, match=rf"{FILES[0]} was edited after it was applied"
    ):
        provider.diff(created.id, created.outs, planned)
    with pytest.raises(migrations.MigrationError, match="edited after it was applied"):
        provider.update(created.id, created.outs, planned)
    assert history(admin_url) == before


def test_files_changed_between_preview_and_up_are_refused(admin_url: str, directory: Path) -> None:
    provider = MigrationsProvider(str(directory))
    planned = inputs(admin_url, directory)
    (directory / "20991231000000_late.sql").write_text("select 1;\n")
    with pytest.raises(
        migrations.MigrationError, match="differ from the ones this deployment was planned with"
    ):
        provider.create(planned)
    assert not _has_history(admin_url), "nothing was applied"


def _has_history(admin_url: str) -> bool:
    with psycopg.connect(admin_url) as connection:
        row = connection.execute("select to_regclass(%s)", (migrations.CHECKSUM_TABLE,)).fetchone()
    return row is not None and row[0] is not None


def test_check_refuses_the_transaction_pooler_and_a_short_password() -> None:
    provider = MigrationsProvider()
    pooled = "postgresql://postgres.ref:TopSecret-1@aws-0-eu.pooler.supabase.com:6543/postgres"
    result = provider.check({}, {"database_url": pooled, "app_password": "short"})
    reasons = {failure.property: failure.reason for failure in result.failures}
    assert "transaction pooler" in reasons["database_url"]
    assert "at least 24 characters" in reasons["app_password"]
    assert "TopSecret-1" not in str(reasons)
    fine = "postgresql://postgres:TopSecret-1@db.ref.supabase.co:5432/postgres"
    assert provider.check({}, {"database_url": fine, "app_password": "x" * 24}).failures == []


def test_an_unreachable_database_is_named_without_its_password(directory: Path) -> None:
    provider = MigrationsProvider(str(directory))
    unreachable = "postgresql://postgres:Hunter2-Secret@127.0.0.1:9/postgres?connect_timeout=2"
    with pytest.raises(DatabaseError) as caught:
        provider.create(inputs(unreachable, directory))
    message = str(caught.value)
    assert message.startswith("database 127.0.0.1:9/postgres: ")
    assert "Hunter2-Secret" not in message
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_delete_leaves_the_schema_and_the_data(admin_url: str, directory: Path) -> None:
    provider = MigrationsProvider(str(directory))
    created = provider.create(inputs(admin_url, directory))
    assert created.outs is not None
    provider.delete(created.id, created.outs)
    assert _has_history(admin_url)
    assert history(admin_url)


def test_the_provider_survives_the_engines_serialization(admin_url: str, directory: Path) -> None:
    # The engine runs the provider in another process from this pickled form.
    serialized = serialize_provider(MigrationsProvider(str(directory)))
    restored = dill.loads(base64.b64decode(serialized))  # noqa: S301 - our own, just made
    assert isinstance(restored, MigrationsProvider)
    result = restored.create(inputs(admin_url, directory))
    assert result.outs is not None
    assert result.outs["applied"] == FILES
    # By reference, not by value: the checkout's code is what runs.
    assert b"infra.components.database" in base64.b64decode(serialized)


def test_the_default_provider_pickles_without_a_path() -> None:
    # A path of one checkout in the state would make every other checkout's
    # preview show a change.
    assert b"/work/" not in base64.b64decode(serialize_provider(MigrationsProvider()))
    assert MigrationsProvider().directory == migrations.MIGRATIONS_DIR


@pytest.mark.parametrize(
    ("admin", "expected"),
    [
        (
            "postgresql://postgres:pw@db.ref.supabase.co:5432/postgres",
            "postgresql://jobsearch_app:{pw}@db.ref.supabase.co:5432/postgres",
        ),
        (
            "postgresql://postgres.ref:pw@aws-0-eu-central-1.pooler.supabase.com:5432/postgres?sslmode=require",
            "postgresql://jobsearch_app.ref:{pw}@aws-0-eu-central-1.pooler.supabase.com:5432/postgres?sslmode=require",
        ),
        (
            "postgresql://postgres:pw@[2001:db8::5]:5432/db",
            "postgresql://jobsearch_app:{pw}@[2001:db8::5]:5432/db",
        ),
    ],
)
def test_the_app_url_swaps_only_the_credentials(admin: str, expected: str) -> None:
    quoted = "Sc-ratch-App-Password%2Fwith%3Aodd%40chars"
    assert app_database_url(admin, PASSWORD) == expected.format(pw=quoted)


def test_preview_shows_a_change_when_the_service_role_lost_its_login(
    admin_url: str, directory: Path
) -> None:
    # Review L12: after a restore or `ops migrations apply`, nothing else changed,
    # yet the role cannot log in; `pulumi up` must give LOGIN back.
    provider = MigrationsProvider(str(directory))
    created = provider.create(inputs(admin_url, directory))
    assert created.outs is not None
    assert provider.diff(created.id, created.outs, inputs(admin_url, directory)).changes is False
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute("alter role jobsearch_app nologin")
    assert not migrations.app_role_can_log_in(admin_url)
    assert provider.diff(created.id, created.outs, inputs(admin_url, directory)).changes is True
    provider.update(created.id, created.outs, inputs(admin_url, directory))
    assert migrations.app_role_can_log_in(admin_url)
    assert scram_matches(admin_url, "jobsearch_app", PASSWORD)


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_the_migration_history_is_out_of_reach_of_supabase_public_roles(
    admin_url: str, directory: Path, role: str
) -> None:
    # Review L3: even where default privileges grant every new table to them.
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute("alter default privileges grant all on tables to anon, authenticated")
        connection.execute("alter default privileges grant all on schemas to anon, authenticated")
    MigrationsProvider(str(directory)).create(inputs(admin_url, directory))
    with psycopg.connect(admin_url, autocommit=True) as connection:
        row = connection.execute(
            "select relrowsecurity, relforcerowsecurity from pg_class where oid = %s::regclass",
            (migrations.CHECKSUM_TABLE,),
        ).fetchone()
        assert row == (True, True)
        connection.execute(f"set role {role}")
        for table in (migrations.CHECKSUM_TABLE, migrations.HISTORY_TABLE):
            for statement in (f"select * from {table}", f"truncate {table}"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    connection.execute(statement)
        connection.execute("reset role")
    assert len(history(admin_url)) == len(FILES)


def _migrate_the_old_way(admin_url: str, directory: Path) -> None:
    """What the code before the Supabase layout did: NNNN_name.sql, history in public."""
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(
            "create table jobsearch_schema_migrations (version text primary key, "
            "name text not null, checksum text not null, "
            "applied_at timestamptz not null default now())"
        )
        for number, migration in enumerate(migrations.discover(directory), start=1):
            with connection.transaction():
                connection.execute(migration.sql.encode())
                connection.execute(
                    "insert into jobsearch_schema_migrations (version, name, checksum) "
                    "values (%s, %s, %s)",
                    (f"{number:04d}", migration.name, migration.checksum),
                )


def test_a_database_migrated_under_the_old_history_is_carried_over(
    admin_url: str, directory: Path
) -> None:
    _migrate_the_old_way(admin_url, directory)
    provider = MigrationsProvider(str(directory))
    assert provider.pending(inputs(admin_url, directory)) == []
    # Re-running 20261128154045_job_cache.sql would fail: the table exists.
    created = provider.create(inputs(admin_url, directory))
    assert created.outs is not None
    assert created.outs["applied_now"] == []
    assert created.outs["applied"] == FILES
    assert history(admin_url) == [
        (name.partition("_")[0], checksum)
        for name, checksum in sorted(migration_checksums(directory).items())
    ]
    with psycopg.connect(admin_url) as connection:
        versions = connection.execute(
            f"select version, name from {migrations.HISTORY_TABLE} order by version"
        ).fetchall()
        assert versions == [tuple(name.removesuffix(".sql").split("_", 1)) for name in FILES]
        assert not _exists(connection, migrations.LEGACY_HISTORY_TABLE)


def test_an_edited_file_is_refused_when_carrying_the_old_history_over(
    admin_url: str, directory: Path
) -> None:
    _migrate_the_old_way(admin_url, directory)
    edited = directory / FILES[1]
    edited.write_text(edited.read_text() + "\n-- an afterthought\n")
    with pytest.raises(migrations.MigrationError, match=rf"{FILES[1]} was edited"):
        MigrationsProvider(str(directory)).create(inputs(admin_url, directory))
    with psycopg.connect(admin_url) as connection:
        assert _exists(connection, migrations.LEGACY_HISTORY_TABLE), "old history kept"


def test_a_version_in_the_history_with_no_file_is_refused(admin_url: str, directory: Path) -> None:
    provider = MigrationsProvider(str(directory))
    created = provider.create(inputs(admin_url, directory))
    assert created.outs is not None
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(
            f"insert into {migrations.HISTORY_TABLE} (version, name) "
            "values ('20991231000000', 'from_studio')"
        )
    with pytest.raises(migrations.MigrationError, match="20991231000000"):
        provider.diff(created.id, created.outs, inputs(admin_url, directory))
    with pytest.raises(migrations.MigrationError, match="supabase migration fetch"):
        provider.update(created.id, created.outs, inputs(admin_url, directory))


def _exists(connection: psycopg.Connection[tuple[object, ...]], table: str) -> bool:
    row = connection.execute("select to_regclass(%s)", (table,)).fetchone()
    return row is not None and row[0] is not None
