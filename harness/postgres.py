"""Scratch databases on the machine's PostgreSQL, and private clusters to stop and start."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def url_for(database: str, user: str = "postgres", admin_url: str = ADMIN_URL) -> str:
    parts = urlsplit(admin_url)
    return urlunsplit(
        parts._replace(netloc=f"{user}@{parts.hostname}:{parts.port}", path=f"/{database}")
    )


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def create_supabase_roles(admin_url: str) -> None:
    """The roles Supabase has and a plain Postgres lacks, with Supabase's default grants.

    Supabase grants anon and authenticated every privilege on new tables in
    `public` by default; creating them the same way shows that the migration
    takes those grants back.
    """
    with psycopg.connect(admin_url, autocommit=True) as connection:
        for role in ("anon", "authenticated", "service_role"):
            exists = connection.execute("select 1 from pg_roles where rolname = %s", (role,))
            if exists.fetchone() is None:
                with contextlib.suppress(psycopg.errors.DuplicateObject):
                    connection.execute(
                        sql.SQL("create role {} nologin").format(sql.Identifier(role))
                    )
        connection.execute(
            "alter default privileges in schema public grant all on tables to anon, authenticated"
        )


@contextlib.contextmanager
def scratch_database(prefix: str = "jobsearch_test") -> Iterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as connection:
        connection.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    admin_url = url_for(name)
    create_supabase_roles(admin_url)
    try:
        yield admin_url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as connection:
            connection.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


def _pg_bin() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql")
    return candidates[-1].parent


@dataclass
class PrivateCluster:
    """A PostgreSQL server of the caller's own, so that it can really be stopped."""

    data_dir: Path
    port: int

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        command = [str(_pg_bin() / "pg_ctl"), "-D", str(self.data_dir), "-w", *args]
        _as_postgres(command)

    def start(self) -> None:
        # -l: the server must not inherit our pipes, or waiting for pg_ctl never ends.
        log_file = self.data_dir.parent / "server.log"
        options = f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1"
        self._ctl("-l", str(log_file), "-o", options, "start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "stop")


def _as_postgres(command: list[str]) -> None:
    # initdb and postgres refuse to run as root.
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(
        command, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=120
    )


@contextlib.contextmanager
def private_cluster(port: int) -> Iterator[PrivateCluster]:
    root = Path(tempfile.mkdtemp(prefix="jobsearch-pg-"))
    data_dir = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    _as_postgres(
        [
            str(_pg_bin() / "initdb"),
            "-D",
            str(data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        ]
    )
    cluster = PrivateCluster(data_dir, port)
    cluster.start()
    try:
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def service_login_url(admin_url: str, *, empty_cache: bool = False) -> str:
    """The service's least-privilege login (jobsearch_app) to the database at `admin_url`.

    The migrations create the role without login (Supabase's deploys set its password);
    here the machine's trust auth lets it in once it may log in.
    """
    with psycopg.connect(admin_url, autocommit=True) as connection:
        if empty_cache:
            connection.execute("truncate job_cache")
        connection.execute("alter role jobsearch_app with login")
    return url_for(database_name(admin_url), user="jobsearch_app")


@contextlib.contextmanager
def supabase_like_cluster(port: int) -> Iterator[PrivateCluster]:
    """A private cluster set up as Supabase's are where `supabase inspect db` looks:
    pg_stat_statements preloaded and installed in the `extensions` schema, and
    Supabase's roles with their default grants."""
    with private_cluster(port) as cluster:
        with psycopg.connect(cluster.admin_url, autocommit=True) as connection:
            connection.execute("alter system set shared_preload_libraries = 'pg_stat_statements'")
        cluster.stop()
        cluster.start()
        create_supabase_roles(cluster.admin_url)
        with psycopg.connect(cluster.admin_url, autocommit=True) as connection:
            connection.execute("create schema extensions")
            connection.execute("create extension pg_stat_statements with schema extensions")
        yield cluster
