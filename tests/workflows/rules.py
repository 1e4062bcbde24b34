"""The rules every workflow follows, as functions listing what breaks them.

They read the YAML (and, for version comments, the raw lines, which YAML
drops). tests/workflows runs them over .github/workflows (expecting nothing)
and over broken copies (expecting each break to be found).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"

PINNED = re.compile(
    r"^\s*(?:-\s+)?uses:\s+(?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]{40})\s+#\s+(?P<version>v\d+\.\d+\.\d+)\s*$"
)
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s+(?P<target>\S+)")
LOCAL_WORKFLOW = re.compile(r"^\./\.github/workflows/[\w-]+\.ya?ml$")


@dataclass(frozen=True)
class Workflow:
    path: Path
    text: str
    data: dict[str, Any]

    @classmethod
    def load(cls, path: Path, text: str | None = None) -> Workflow:
        text = path.read_text() if text is None else text
        # YAML 1.1 reads the key `on` as True; BaseLoader keeps every scalar a string.
        data = yaml.load(text, Loader=yaml.BaseLoader)  # noqa: S506 - BaseLoader builds no objects
        return cls(path, text, data)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def triggers(self) -> dict[str, Any]:
        on = self.data.get("on") or {}
        if isinstance(on, str):
            return {on: {}}
        if isinstance(on, list):
            return {name: {} for name in on}
        return dict(on)

    @property
    def jobs(self) -> dict[str, dict[str, Any]]:
        return dict(self.data.get("jobs") or {})

    def steps(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for job_id, job in self.jobs.items():
            for step in job.get("steps") or []:
                yield job_id, step


def load_all(directory: Path = WORKFLOWS) -> list[Workflow]:
    return [Workflow.load(path) for path in sorted(directory.glob("*.y*ml"))]


def check_permissions(workflow: Workflow) -> list[str]:
    problems = []
    if workflow.data.get("permissions") != {}:
        problems.append(f"{workflow.name}: top-level `permissions: {{}}` is missing")
    for job_id, job in workflow.jobs.items():
        permissions = job.get("permissions")
        if not isinstance(permissions, dict):
            problems.append(f"{workflow.name}: job {job_id} sets no permissions of its own")
            continue
        for scope, level in permissions.items():
            if level not in ("read", "write", "none"):
                problems.append(f"{workflow.name}: job {job_id}: {scope}: {level}")
    return problems


def check_timeouts(workflow: Workflow) -> list[str]:
    problems = []
    for job_id, job in workflow.jobs.items():
        if "uses" in job:
            # A job that calls a reusable workflow cannot set a timeout; the
            # called workflow's jobs must (checked on that file).
            continue
        minutes = job.get("timeout-minutes")
        if minutes is None or not str(minutes).isdigit() or not 0 < int(minutes) <= 120:
            problems.append(f"{workflow.name}: job {job_id} has no timeout-minutes (1-120)")
    return problems


def check_pins(workflow: Workflow) -> list[str]:
    problems = []
    for number, line in enumerate(workflow.text.splitlines(), start=1):
        found = USES_LINE.match(line)
        if not found:
            continue
        target = found["target"]
        if target.startswith("./"):
            if not LOCAL_WORKFLOW.match(target) or not (ROOT / target).exists():
                problems.append(f"{workflow.name}:{number}: local {target} does not exist")
            continue
        if not PINNED.match(line):
            problems.append(
                f"{workflow.name}:{number}: {target} is not pinned to a 40-hex commit "
                "with a `# vX.Y.Z` comment"
            )
    return problems


def check_checkouts(workflow: Workflow) -> list[str]:
    problems = []
    for job_id, step in workflow.steps():
        checkout = str(step.get("uses", "")).startswith("actions/checkout@")
        if checkout and (step.get("with") or {}).get("persist-credentials") != "false":
            problems.append(f"{workflow.name}: job {job_id} checks out with credentials kept")
    return problems


def check_no_expressions_in_scripts(workflow: Workflow) -> list[str]:
    """`${{ }}` in a script is pasted in before the shell reads it: values go through env."""
    return [
        f"{workflow.name}: job {job_id}, step {step.get('name', '?')}: ${{{{ }}}} in run"
        for job_id, step in workflow.steps()
        if "${{" in str(step.get("run", ""))
    ]


def check_no_dangerous_triggers(workflow: Workflow) -> list[str]:
    dangerous = {"pull_request_target", "workflow_run"}
    return [
        f"{workflow.name}: triggered by {name}" for name in workflow.triggers if name in dangerous
    ]


ALL_RULES = (
    check_permissions,
    check_timeouts,
    check_pins,
    check_checkouts,
    check_no_expressions_in_scripts,
    check_no_dangerous_triggers,
)


def problems(workflow: Workflow) -> list[str]:
    return [problem for rule in ALL_RULES for problem in rule(workflow)]
