"""Metrics across worker processes: a dead worker's gauges leave with it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

_SET_GAUGES = textwrap.dedent(
    """
    import sys
    from jobsearch.metrics import CIRCUIT_OPEN, DATABASE_UP, render_latest

    circuit, database = map(int, sys.argv[1:3])
    CIRCUIT_OPEN.labels("jsearch").set(circuit)
    DATABASE_UP.set(database)
    if sys.argv[3] == "render":
        print(render_latest()[0].decode())
    """
)


def _worker(directory: Path, *args: str) -> str:
    """One worker process on the shared metrics directory, as uvicorn's would be."""
    result = subprocess.run(
        [sys.executable, "-c", _SET_GAUGES, *args],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_gauges_of_a_dead_worker_no_longer_count(tmp_path: Path) -> None:
    # A worker saw the circuit open and the database down, then died (OOM-killed, say).
    _worker(tmp_path, "1", "0", "exit")
    # Its replacement sees both healthy, and serves /metrics.
    text = _worker(tmp_path, "0", "1", "render")
    assert 'jobsearch_upstream_circuit_open{source="jsearch"} 0.0' in text
    assert "jobsearch_database_up 1.0" in text
