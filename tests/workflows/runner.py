"""Run one job of a workflow the way GitHub's runner would, minus the actions.

Each `run:` step goes to bash with the step's env (expressions filled in from
inputs, vars, secrets and earlier steps' outputs), GITHUB_OUTPUT, GITHUB_ENV
and GITHUB_STEP_SUMMARY files, and `if:` conditions evaluated with GitHub's
status functions. `uses:` steps (checkout, setup-python, the Pulumi
installer) are taken as done. The programs the scripts call come from PATH,
which the test arranges (stand-ins for `pulumi`, `make` and `pytest`; the real
`ops`). This is how the deploy job's rollback logic is tested without GitHub.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.workflows.rules import ROOT, Workflow

__all__ = ["ROOT", "JobRun", "checkout", "run_job", "search_path", "stand_in"]

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
NAME = re.compile(r"\b[a-z][\w-]*(?:\.[\w-]+)+")


@dataclass
class StepResult:
    name: str
    outcome: str  # success, failure or skipped
    outputs: dict[str, str] = field(default_factory=dict)
    stdout: str = ""
    summary: str = ""


@dataclass
class JobRun:
    steps: list[StepResult]

    @property
    def failed(self) -> bool:
        return any(step.outcome == "failure" for step in self.steps)

    def step(self, name: str) -> StepResult:
        return next(step for step in self.steps if step.name == name)

    @property
    def ran(self) -> list[str]:
        return [step.name for step in self.steps if step.outcome != "skipped"]

    @property
    def log(self) -> str:
        return "\n".join(step.stdout for step in self.steps)


class Context:
    def __init__(self, contexts: Mapping[str, Mapping[str, str]]) -> None:
        self.contexts = contexts
        self.steps: dict[str, StepResult] = {}

    def get(self, dotted: str) -> str:
        head, _, rest = dotted.partition(".")
        if head == "steps":
            step_id, _, what = rest.partition(".")
            step = self.steps.get(step_id)
            if step is None:
                return ""
            if what == "outcome":
                return step.outcome
            return step.outputs.get(what.removeprefix("outputs."), "")
        return str(self.contexts.get(head, {}).get(rest, ""))

    def evaluate(self, expression: str, *, failed: bool) -> Any:
        python = expression.replace("&&", " and ").replace("||", " or ")
        python = re.sub(r"!(?!=)", " not ", python)
        python = python.replace("failure()", "_failure").replace("success()", "_success")
        python = python.replace("always()", "True")
        python = NAME.sub(lambda m: f"_get({m.group(0)!r})", python)
        namespace = {"_get": self.get, "_failure": failed, "_success": not failed}
        return eval(python, {"__builtins__": {}}, namespace)  # noqa: S307 - our own workflow files

    def fill(self, text: str, *, failed: bool = False) -> str:
        return EXPRESSION.sub(lambda m: str(self.evaluate(m.group(1), failed=failed)), text)


def _read_pairs(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        if "=" in line:
            key, _, value = line.partition("=")
            pairs[key] = value
    return pairs


def run_job(
    workflow: Workflow,
    job_id: str,
    *,
    work_dir: Path,
    path: str,
    contexts: Mapping[str, Mapping[str, str]],
    extra_env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> JobRun:
    """Run `job_id`'s steps; scripts run in `cwd` (default `work_dir`), as in a checkout."""
    job = workflow.jobs[job_id]
    context = Context(contexts)
    exported: dict[str, str] = {}
    results: list[StepResult] = []
    job_env = {key: context.fill(str(value)) for key, value in (job.get("env") or {}).items()}
    for index, step in enumerate(job.get("steps") or []):
        name = str(step.get("name") or f"step {index}")
        failed = any(result.outcome == "failure" for result in results)
        condition = str(step.get("if", "success()")).strip()
        condition = EXPRESSION.sub(lambda m: m.group(1), condition)
        if not re.search(r"\b(success|failure|always|cancelled)\(\)", condition):
            # GitHub's rule: without a status function, `if:` means success() && (...).
            condition = f"success() && ({condition})"
        run = "run" in step and bool(context.evaluate(condition, failed=failed))
        if "uses" in step and not failed and bool(context.evaluate(condition, failed=failed)):
            result = StepResult(name, "success")
        elif not run:
            result = StepResult(name, "skipped")
        else:
            result = _run_step(
                step, name, context, job_env, exported, work_dir, cwd or work_dir, path, extra_env
            )
        if "id" in step:
            context.steps[str(step["id"])] = result
        results.append(result)
    return JobRun(results)


def _run_step(
    step: Mapping[str, Any],
    name: str,
    context: Context,
    job_env: Mapping[str, str],
    exported: dict[str, str],
    work_dir: Path,
    cwd: Path,
    path: str,
    extra_env: Mapping[str, str] | None,
) -> StepResult:
    files = {
        key: work_dir / f"{key.lower()}-{abs(hash(name))}"
        for key in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STEP_SUMMARY")
    }
    for file in files.values():
        file.write_text("")
    step_env = {key: context.fill(str(value)) for key, value in (step.get("env") or {}).items()}
    env = {
        "PATH": path,
        "HOME": str(work_dir),
        "RUNNER_TEMP": str(work_dir),
        "GITHUB_RUN_ID": "4242",
        **{key: str(value) for key, value in files.items()},
        **(extra_env or {}),
        **job_env,
        **exported,
        **step_env,
    }
    completed = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", str(step["run"])],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    exported.update(_read_pairs(files["GITHUB_ENV"]))
    return StepResult(
        name,
        "success" if completed.returncode == 0 else "failure",
        _read_pairs(files["GITHUB_OUTPUT"]),
        completed.stdout + completed.stderr,
        files["GITHUB_STEP_SUMMARY"].read_text(),
    )


def stand_in(directory: Path, name: str, script: str) -> None:
    """An executable `name` in `directory` running the given sh script."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    target.write_text("#!/bin/sh\n" + script)
    target.chmod(0o755)


def search_path(*directories: Path) -> str:
    return os.pathsep.join([*(str(d) for d in directories), "/usr/local/bin", "/usr/bin", "/bin"])


def checkout(directory: Path, *files: str) -> Path:
    """A stand-in checkout: the repository files the scripts read, and an empty venv."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in files:
        (directory / name).write_bytes((ROOT / name).read_bytes())
    (directory / ".venv" / "bin").mkdir(parents=True, exist_ok=True)
    (directory / ".venv" / "bin" / "activate").write_text("")
    return directory
