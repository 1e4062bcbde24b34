"""Run `ops` as a person would, and capture what it prints and how it exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.ops.cli import main
from infra.standins.app import StandinState
from tests.infra.ops.services import service_process


@dataclass
class OpsResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def error_line(self) -> str:
        lines = self.err.strip().splitlines()
        return lines[-1] if lines else ""


OpsRunner = Callable[..., OpsResult]


@pytest.fixture
def ops(capsys: pytest.CaptureFixture[str]) -> OpsRunner:
    """`ops("diagnose", "--url", url)` runs the CLI in-process and returns its exit and output."""

    def run(*argv: str) -> OpsResult:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            main(list(argv))
        captured = capsys.readouterr()
        code = exited.value.code
        return OpsResult(code if isinstance(code, int) else 1, captured.out, captured.err)

    return run


@pytest.fixture
def ops_process() -> OpsRunner:
    """The installed `ops` console script as its own process; `env=` adds variables.

    For commands whose target shares this process's stdout (a service served
    in a thread logs there) or that must find programs on a given PATH.
    """

    def run(*argv: str, env: dict[str, str] | None = None, timeout: float = 120) -> OpsResult:
        script = Path(sys.executable).with_name("ops")
        completed = subprocess.run(
            [str(script), *argv],
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return OpsResult(completed.returncode, completed.stdout, completed.stderr)

    return run


@pytest.fixture
def service(
    migrated_database: str, fakes_url: str, fakes: StandinState, tmp_path: Path
) -> Iterator[str]:
    """`jobsearch-api` as its own process, on the fake upstreams and a real cache."""
    with service_process(migrated_database, fakes_url, tmp_path / "service.log") as url:
        yield url
