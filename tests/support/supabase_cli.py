"""The real Supabase CLI (npm `supabase`, pinned in tools/supabase-cli), installed on demand."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
CLI_DIR = ROOT / "tools" / "supabase-cli"
CLI = CLI_DIR / "node_modules" / ".bin" / "supabase"


def pinned_version() -> str:
    return str(json.loads((CLI_DIR / "package.json").read_text())["dependencies"]["supabase"])


def _installed_version() -> str | None:
    manifest = CLI_DIR / "node_modules" / "supabase" / "package.json"
    if not CLI.exists() or not manifest.exists():
        return None
    return str(json.loads(manifest.read_text())["version"])


def ensure_supabase_cli() -> Path:
    """`npm ci` in tools/supabase-cli unless the pinned CLI is there already."""
    if _installed_version() != pinned_version():
        if shutil.which("npm") is None:
            raise RuntimeError("the Supabase CLI needs npm (Debian: apt-get install npm)")
        subprocess.run(
            ["npm", "ci", "--prefix", str(CLI_DIR), "--no-audit", "--no-fund"],
            check=True,
            stdin=subprocess.DEVNULL,
            timeout=600,
        )
    return CLI


def cli_url(admin_url: str) -> str:
    """The CLI's --db-url: the machine's server has no TLS, and the CLI would ask for it."""
    parts = urlsplit(admin_url)
    query = "&".join(q for q in (parts.query, "sslmode=disable") if q)
    return urlunsplit(parts._replace(query=query))


def supabase(
    *args: str, cwd: Path, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the CLI in `cwd` (its .temp/ lands there, never in the checkout)."""
    env = {**os.environ, "DO_NOT_TRACK": "1", "SUPABASE_TELEMETRY_DISABLED": "1"}
    result = subprocess.run(
        [str(ensure_supabase_cli()), *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        command = " ".join(args)
        raise AssertionError(
            f"supabase {command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def migration_list(workdir: Path, admin_url: str) -> list[dict[str, Any]]:
    """`supabase migration list --db-url`: [{"local", "remote", "time"}, ...]."""
    result = supabase(
        "--workdir",
        str(workdir),
        "migration",
        "list",
        "--db-url",
        cli_url(admin_url),
        "--output-format",
        "json",
        cwd=workdir,
    )
    rows: list[dict[str, Any]] = json.loads(result.stdout)["migrations"]
    return rows
