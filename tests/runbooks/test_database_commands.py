"""The database commands the runbooks name, run as written against a Supabase-like Postgres.

Every ```sh line of a runbook that runs psql, the Supabase CLI, or `ops` on
the database is run, in order, in one bash per runbook, with the variables the
runbook's earlier lines set (DATABASE_URL stands for `pulumi config get`).
The server is a private cluster with pg_stat_statements loaded, as Supabase's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.postgres import PrivateCluster, supabase_like_cluster
from harness.servers import free_port
from infra import migrations
from tests.runbooks import checks
from tests.runbooks.shell import blocks, commands
from tests.support.supabase_cli import ensure_supabase_cli

DATABASE_RUNBOOKS = ("JobSearchApiDegraded.md", "search-is-broken.md", "restore-cache-database.md")
# What a line may run to be run here; the rest (pulumi, ssh, curl) needs a stack.
RUNNABLE = {"psql", "supabase", "ops", "jq", "export"}


def database_lines(text: str) -> list[str]:
    """The lines of sh that touch the database, and the exports they need."""
    lines = []
    for block in blocks(text):
        if block.lang != "sh":
            continue
        for raw in block.body.replace("\\\n", " ").splitlines():
            found = commands(raw)
            names = {command.name for command in found}
            if not found or not names <= RUNNABLE:
                continue
            ops = [command.argv[1:3] for command in found if command.name == "ops"]
            if any(
                argv not in (("diagnose", "--database"), ("migrations", "status")) for argv in ops
            ):
                continue
            if names == {"export"} and "PGPASSFILE" not in raw:
                continue
            lines.append(raw)
    return lines


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    ensure_supabase_cli()
    with supabase_like_cluster(free_port()) as running:
        migrations.apply(running.admin_url)
        yield running


def run_lines(
    lines: list[str], cluster: PrivateCluster, home: Path
) -> subprocess.CompletedProcess[str]:
    cli = ensure_supabase_cli()
    env = {
        **os.environ,
        "HOME": str(home),
        "PATH": os.pathsep.join(
            (str(cli.parent), str(Path(sys.executable).parent), os.environ["PATH"])
        ),
        "DATABASE_URL": f"{cluster.admin_url}?sslmode=disable",
    }
    env.pop("PGPASSWORD", None)
    # What the runbook asks the engineer to have: a password file (trust auth here).
    pgpass = home / ".pgpass"
    pgpass.write_text(f"127.0.0.1:{cluster.port}:*:postgres:not-needed-with-trust\n")
    pgpass.chmod(0o600)
    script = "set -euo pipefail\n" + "\n".join(
        f"echo '>>> {i}'\n{line}" for i, line in enumerate(lines)
    )
    return subprocess.run(
        ["bash", "-c", script],
        env=env,
        cwd=home,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("name", DATABASE_RUNBOOKS)
def test_the_database_commands_of_a_runbook_run(
    name: str, cluster: PrivateCluster, tmp_path: Path
) -> None:
    lines = database_lines((checks.RUNBOOKS / name).read_text())
    assert any("psql" in line or "supabase" in line or "ops diagnose" in line for line in lines)
    result = run_lines(lines, cluster, tmp_path)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    # Each line ran (set -e stops at the first failure).
    assert result.stdout.count(">>> ") == len(lines)
    assert "error" not in result.stderr.lower(), result.stderr


def test_every_inspection_the_runbooks_name_is_run_here() -> None:
    named: set[str] = set()
    for name in DATABASE_RUNBOOKS:
        for line in database_lines((checks.RUNBOOKS / name).read_text()):
            for command in commands(line):
                if command.argv[:3] == ("supabase", "inspect", "db"):
                    named.add(command.argv[3])
    assert named >= {"long-running-queries", "blocking", "locks", "db-stats", "bloat"}
    assert named <= checks.SUPABASE_INSPECTIONS


def test_no_runbook_runs_a_database_client_with_a_password() -> None:
    for path in sorted(checks.RUNBOOKS.glob("*.md")):
        for block in blocks(path.read_text()):
            if block.lang != "sh":
                continue
            for command in commands(block.body, block.line):
                if command.name in checks.DATABASE_CLIENTS:
                    assert checks.check_database_client(command) == [], path.name
