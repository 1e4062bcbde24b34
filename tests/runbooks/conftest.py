"""The rehearsals' durations, listed at the end of the run (tests/runbooks/test_rehearsals.py)."""

from __future__ import annotations

import pytest

REHEARSALS = pytest.StashKey[list[tuple[str, str, float]]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[REHEARSALS] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    rehearsed = terminalreporter.config.stash.get(REHEARSALS, [])
    if not rehearsed:
        return
    terminalreporter.section("runbook rehearsals")
    for alert, what, seconds in rehearsed:
        terminalreporter.write_line(f"{alert:34} {seconds:6.1f}s  {what}")
    total = sum(seconds for _, _, seconds in rehearsed)
    terminalreporter.write_line(f"{'all ' + str(len(rehearsed)):34} {total:6.1f}s")
