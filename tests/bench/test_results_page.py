"""`python -m bench` writes the results page; docs/benchmarks.md is such a page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench.__main__ import BENCHMARKS, main
from bench.machine import describe_machine
from bench.report import BenchResult, failed_result, percentile, render

REPO_ROOT = Path(__file__).resolve().parents[2]
PAGE = REPO_ROOT / "docs" / "benchmarks.md"


def _table_rows(page: str) -> list[list[str]]:
    start = page.index("| # | Benchmark | Result | Target | Verdict |")
    rows = []
    for line in page[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_cli_runs_a_benchmark_and_writes_the_page(tmp_path: Path) -> None:
    output = tmp_path / "benchmarks.md"
    code = main(["--only", "upstream_calls", "--tiny", "--output", str(output)])
    assert code == 0
    page = output.read_text()
    assert "`python -m bench --only upstream_calls --tiny --output" in page
    assert re.search(r"\*\*Machine:\*\* \d+ cores .* GiB memory, Linux .*, Python 3\.", page)
    assert re.search(r"\*\*Date:\*\* \d{4}-\d\d-\d\d \d\d:\d\d UTC", page)
    rows = _table_rows(page)
    assert len(rows) == 1
    assert rows[0][1] == "Paid upstream calls"
    assert re.match(r"\d+ calls for 60 requests", rows[0][2])
    assert rows[0][4] in ("met", "**missed**")
    assert "## 1. Paid upstream calls" in page
    raw = json.loads(next(tmp_path.glob("bench-*.json")).read_text())
    assert raw["results"][0]["key"] == "upstream_calls"
    assert raw["machine"]["cores"] >= 1


def test_a_failed_or_pending_benchmark_says_so_on_the_page() -> None:
    results = [
        failed_result("cache_hit", "Cache-hit throughput", ">= 0.7", RuntimeError("wrk died")),
        BenchResult(
            key="rollout",
            title="Rollout",
            headline="not measured",
            target="0 failed",
            met=None,
            outcome="pending",
        ),
    ]
    page = render(results, describe_machine(), "python -m bench")
    rows = _table_rows(page)
    assert rows[0][4] == "**not measured: failed**"
    assert rows[1][4] == "**pending**"
    assert "RuntimeError: wrk died" in page


def test_percentile_is_nearest_rank() -> None:
    samples = [float(n) for n in range(1, 101)]
    assert percentile(samples, 0.99) == 99.0
    assert percentile(samples, 0.5) == 50.0
    assert percentile([3.0], 0.99) == 3.0
    with pytest.raises(Exception, match="no samples"):
        percentile([], 0.5)


def test_committed_page_reports_all_five_with_command_and_machine() -> None:
    page = PAGE.read_text()
    assert "**Command:** `make bench" in page, "the page must come from a full run"
    assert "**Machine:**" in page
    assert "**Date:**" in page
    rows = _table_rows(page)
    assert [row[1] for row in rows] == [module.TITLE for module, _ in BENCHMARKS.values()]
    for row in rows:
        assert row[2] not in ("", "not measured"), f"{row[1]} has no figure"
