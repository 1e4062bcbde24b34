"""Benchmark results and the markdown page they are written to."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from bench.machine import Machine

PAGE_TITLE = "# Benchmarks"


class BenchError(Exception):
    """A measurement that cannot be trusted (e.g. a request failed where none may);
    the benchmark reports it instead of a figure."""


@dataclass
class BenchResult:
    key: str
    title: str
    # The ratio (or count) the benchmark is judged on, written for a reader.
    headline: str
    target: str
    # None: there is no target to meet, or nothing was measured (see `outcome`).
    met: bool | None
    figures: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Machine-readable values, for bench/results/*.json and the tests.
    values: dict[str, float] = field(default_factory=dict)
    outcome: Literal["measured", "pending", "failed"] = "measured"

    @property
    def verdict(self) -> str:
        if self.outcome == "pending":
            return "**pending**"
        if self.outcome == "failed":
            return "**not measured: failed**"
        if self.met is None:
            return "reported (no target)"
        return "met" if self.met else "**missed**"


def failed_result(key: str, title: str, target: str, error: Exception) -> BenchResult:
    """What the page says when a benchmark could not produce a trustworthy figure."""
    return BenchResult(
        key=key,
        title=title,
        headline="not measured",
        target=target,
        met=None,
        notes=[f"The run failed: {type(error).__name__}: {error}"],
        outcome="failed",
    )


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; `fraction` in (0, 1]."""
    if not samples:
        raise BenchError("no samples to take a percentile of")
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.4999)))
    return ordered[rank - 1]


def median(samples: Sequence[float]) -> float:
    if not samples:
        raise BenchError("no samples to take a median of")
    return float(statistics.median(samples))


def render(results: Sequence[BenchResult], machine: Machine, command: str, intro: str = "") -> str:
    lines = [
        PAGE_TITLE,
        "",
        "Written by `make bench` (`python -m bench`, code in `bench/`); do not edit by hand.",
        "Each headline is a ratio of two things measured side by side in the same run,",
        "because a shared machine's absolute times drift from one run to the next.",
    ]
    if intro:
        lines += ["", intro]
    lines += [
        "",
        f"- **Command:** `{command}`",
        f"- **Date:** {machine.date}",
        f"- **Machine:** {machine.describe()}",
        "",
        "| # | Benchmark | Result | Target | Verdict |",
        "|---|---|---|---|---|",
    ]
    for number, result in enumerate(results, start=1):
        lines.append(
            f"| {number} | {result.title} | {result.headline} | {result.target} | "
            f"{result.verdict} |"
        )
    for number, result in enumerate(results, start=1):
        lines += ["", f"## {number}. {result.title}", ""]
        if result.figures:
            lines += ["| Figure | Value |", "|---|---|"]
            lines += [f"| {label} | {value} |" for label, value in result.figures]
        if result.notes:
            lines.append("")
            lines += [f"- {note}" for note in result.notes]
    return "\n".join(lines) + "\n"


def write_page(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    temporary.replace(path)


def write_raw(directory: Path, results: Sequence[BenchResult], machine: Machine) -> Path:
    """Every result as JSON under bench/results/ (ignored by git), for comparisons."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = machine.date.replace(":", "").replace(" ", "T")
    path = directory / f"bench-{stamp}.json"
    payload = {"machine": asdict(machine), "results": [asdict(result) for result in results]}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
