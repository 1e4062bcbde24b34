"""`ops migrations status|apply`: the cache database against service/supabase/migrations/.

The history is Supabase's (`supabase migration list --workdir service` shows the
same), with our checksums beside it: an edited, applied file is refused.

The connection string comes from --database-url or, better (it then stays
out of the shell history and `ps`), from the DATABASE_URL environment
variable. Its password is never printed.
"""

from __future__ import annotations

import argparse
import os

import psycopg

from infra import migrations
from infra.ops.cli import Command, OpsError
from infra.ops.report import emit, mask_database_url, scrub


def database_url(value: str) -> str:
    if not value.startswith(("postgresql://", "postgres://")):
        raise argparse.ArgumentTypeError(
            "must be a postgresql://USER:PASSWORD@HOST:PORT/DATABASE connection string"
        )
    return value


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        type=database_url,
        default=None,
        help="admin connection string; default: the DATABASE_URL environment variable",
    )


def _url(args: argparse.Namespace) -> str:
    url = args.database_url or os.environ.get("DATABASE_URL")
    if not url:
        raise OpsError("no database: pass --database-url or set DATABASE_URL")
    try:
        return database_url(url)
    except argparse.ArgumentTypeError as error:
        raise OpsError(f"DATABASE_URL {error}") from None


def _call_failed(url: str, error: Exception) -> OpsError:
    try:
        password = psycopg.conninfo.conninfo_to_dict(url).get("password")
    except psycopg.Error:
        password = None
    text = str(error).strip()
    reason = scrub(text.splitlines()[0] if text else "", str(password) if password else None)
    return OpsError(f"{mask_database_url(url)}: {reason or type(error).__name__}")


def run_status(args: argparse.Namespace) -> int:
    url = _url(args)
    try:
        result = migrations.status(url)
    except (psycopg.Error, migrations.MigrationError) as error:
        raise _call_failed(url, error) from None
    masked = mask_database_url(url)
    emit(
        args,
        {
            "database": masked,
            "applied": result.applied,
            "pending": result.pending,
            "unknown": result.unknown,
        },
        [
            f"database {masked}",
            *(f"  applied  {name}" for name in result.applied),
            *(f"  PENDING  {name}" for name in result.pending),
            *(
                f"  UNKNOWN  {version} (in the database's history, no file here)"
                for version in result.unknown
            ),
            f"{len(result.applied)} applied, {len(result.pending)} pending",
        ],
    )
    return 0


def run_apply(args: argparse.Namespace) -> int:
    url = _url(args)
    try:
        done = migrations.apply(url)
    except (psycopg.Error, migrations.MigrationError) as error:
        raise _call_failed(url, error) from None
    masked = mask_database_url(url)
    emit(
        args,
        {"database": masked, "applied_now": done},
        [
            f"database {masked}",
            *(f"  applied  {name}" for name in done),
            f"{len(done)} applied now",
        ],
    )
    return 0


COMMAND = Command(
    "migrations",
    help="which migrations the cache database has applied, and apply the pending ones",
    description=__doc__,
    subcommands=(
        Command(
            "status",
            help="list the applied and the pending migrations",
            arguments=_arguments,
            json=True,
            run=run_status,
        ),
        Command(
            "apply",
            help="apply the pending migrations, each in its own transaction",
            arguments=_arguments,
            json=True,
            run=run_apply,
        ),
    ),
    subcommand_metavar="ACTION",
)
