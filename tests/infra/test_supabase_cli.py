"""Our migrations component and the real Supabase CLI share one history.

The CLI is npm's `supabase`, pinned in tools/supabase-cli and installed on first
use; each test runs it against a scratch database on the machine's PostgreSQL.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from harness.postgres import scratch_database
from infra import migrations
from infra.components.database import MigrationsProvider, migration_checksums
from tests.support.supabase_cli import (
    CLI_DIR,
    cli_url,
    ensure_supabase_cli,
    migration_list,
    pinned_version,
    supabase,
)

PASSWORD = "Sc-ratch-App-Password-for-the-CLI-tests"
VERSIONS = [m.version for m in migrations.discover()]
PUSHED = "20991231000000_pushed_once.sql"
# Not idempotent: a second run fails, so running it twice cannot go unnoticed.
PUSHED_SQL = "create table public.pushed_once (id int primary key);\n"


@pytest.fixture(scope="session", autouse=True)
def cli() -> Path:
    return ensure_supabase_cli()


@pytest.fixture
def admin_url() -> Iterator[str]:
    with scratch_database("jobsearch_supabase_cli") as url:
        yield url


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A Supabase project directory (`--workdir`) with a copy of our migrations."""
    shutil.copytree(migrations.MIGRATIONS_DIR, tmp_path / "supabase" / "migrations")
    return tmp_path


def _provider_and_inputs(
    admin_url: str, workdir: Path
) -> tuple[MigrationsProvider, dict[str, object]]:
    directory = workdir / "supabase" / "migrations"
    return MigrationsProvider(str(directory)), {
        "database_url": admin_url,
        "app_password": PASSWORD,
        "migrations": migration_checksums(directory),
    }


def _push(workdir: Path, admin_url: str) -> str:
    result = supabase(
        "--workdir",
        str(workdir),
        "db",
        "push",
        "--db-url",
        cli_url(admin_url),
        "--yes",
        cwd=workdir,
    )
    return result.stdout + result.stderr


def test_the_cli_is_the_pinned_one(cli: Path) -> None:
    assert supabase("--version", cwd=CLI_DIR).stdout.strip() == pinned_version() == "2.117.0"


def test_the_cli_lock_names_no_registry() -> None:
    lock = (CLI_DIR / "package-lock.json").read_text()
    assert '"resolved"' not in lock
    assert "registry" not in lock
    assert "omit-lockfile-registry-resolved=true" in (CLI_DIR / ".npmrc").read_text()


def test_migration_list_shows_what_the_component_applied(admin_url: str, workdir: Path) -> None:
    provider, planned = _provider_and_inputs(admin_url, workdir)
    provider.create(planned)
    rows = migration_list(workdir, admin_url)
    assert [(row["local"], row["remote"]) for row in rows] == [(v, v) for v in VERSIONS]


def test_the_service_checkout_is_the_cli_workdir(admin_url: str, tmp_path: Path) -> None:
    # `supabase --workdir service ...` from the repository reads the same files.
    migrations.apply(admin_url)
    workdir = tmp_path / "service"
    shutil.copytree(migrations.SUPABASE_WORKDIR / "supabase", workdir / "supabase")
    rows = migration_list(workdir, admin_url)
    assert [(row["local"], row["remote"]) for row in rows] == [(v, v) for v in VERSIONS]


def test_a_migration_db_push_applied_is_not_run_twice(admin_url: str, workdir: Path) -> None:
    provider, planned = _provider_and_inputs(admin_url, workdir)
    created = provider.create(planned)
    assert created.outs is not None

    (workdir / "supabase" / "migrations" / PUSHED).write_text(PUSHED_SQL)
    pushed = _push(workdir, admin_url)
    # The CLI read our records: it applied only the new file.
    assert f"Applying migration {PUSHED}" in pushed
    assert "job_cache.sql" not in pushed

    provider, planned = _provider_and_inputs(admin_url, workdir)
    assert provider.pending(planned) == []
    updated = provider.update(created.id, created.outs, planned)
    assert updated.outs is not None
    assert updated.outs["applied_now"] == []
    assert updated.outs["applied"][-1] == PUSHED
    # From now on the file's checksum is ours to check.
    with psycopg.connect(admin_url) as connection:
        row = connection.execute(
            f"select checksum from {migrations.CHECKSUM_TABLE} where version = %s",
            (PUSHED.partition("_")[0],),
        ).fetchone()
    assert row == (migration_checksums(workdir / "supabase" / "migrations")[PUSHED],)
    rows = migration_list(workdir, admin_url)
    assert all(row["local"] == row["remote"] for row in rows)
    assert len(rows) == len(VERSIONS) + 1


def test_a_database_pushed_by_the_cli_alone_is_taken_over(admin_url: str, workdir: Path) -> None:
    _push(workdir, admin_url)
    provider, planned = _provider_and_inputs(admin_url, workdir)
    created = provider.create(planned)
    assert created.outs is not None
    assert created.outs["applied_now"] == []
    assert migrations.app_role_can_log_in(admin_url)


def test_an_edited_applied_file_is_refused_naming_it(admin_url: str, workdir: Path) -> None:
    provider, planned = _provider_and_inputs(admin_url, workdir)
    created = provider.create(planned)
    assert created.outs is not None
    (workdir / "supabase" / "migrations" / PUSHED).write_text(PUSHED_SQL)
    _push(workdir, admin_url)
    provider.update(created.id, created.outs, _provider_and_inputs(admin_url, workdir)[1])

    for name in (sorted(migration_checksums(workdir / "supabase" / "migrations"))[0], PUSHED):
        edited = workdir / "supabase" / "migrations" / name
        original = edited.read_text()
        edited.write_text(original + "\n-- an afterthought\n")
        provider, planned = _provider_and_inputs(admin_url, workdir)
        with pytest.raises(
            migrations.MigrationError, match=rf"{name} was edited after it was applied"
        ):
            provider.diff(created.id, created.outs, planned)
        with pytest.raises(
            migrations.MigrationError, match=rf"{name} was edited after it was applied"
        ):
            provider.update(created.id, created.outs, planned)
        edited.write_text(original)
