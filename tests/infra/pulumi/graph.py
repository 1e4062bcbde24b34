"""The resource graph one run of the program registered, and ways to question it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.infra.pulumi.stack_config import ROOT, StackInput, resolve

SIG = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SIG) == SECRET_SIG


def reveal(value: Any) -> Any:
    """The value with every secret wrapper removed."""
    if is_secret(value):
        return reveal(value.get("value"))
    if isinstance(value, dict):
        return {key: reveal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [reveal(item) for item in value]
    return value


def plain_strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, string) for every string outside a secret wrapper."""
    if is_secret(value):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield from plain_strings(key, f"{path}.<key>")
            yield from plain_strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from plain_strings(item, f"{path}[{index}]")
    elif isinstance(value, str):
        yield path, value


@dataclass
class Resource:
    urn: str
    type: str
    name: str
    parent: str
    provider: str
    inputs: dict[str, Any]
    dependencies: list[str]
    additional_secret_outputs: list[str]
    delete_before_replace: bool
    ignore_changes: list[str]
    protect: bool
    custom: bool
    raw: dict[str, Any] = field(repr=False)

    def __getitem__(self, key: str) -> Any:
        """An input, secrets revealed."""
        return reveal(self.inputs[key])

    def secret(self, key: str) -> bool:
        return is_secret(self.inputs.get(key))


@dataclass
class Graph:
    stack: str
    resources: list[Resource]
    reads: list[dict[str, Any]]
    raw_outputs: dict[str, Any] | None
    logs: list[dict[str, str]]
    error: dict[str, str] | None

    @property
    def outputs(self) -> dict[str, Any]:
        assert self.raw_outputs is not None, self.error
        return dict(reveal(self.raw_outputs))

    def of_type(self, kind: str) -> list[Resource]:
        return [r for r in self.resources if r.type == kind]

    def named(self, name: str) -> Resource:
        found = [r for r in self.resources if r.name == name]
        assert len(found) == 1, (
            f"{len(found)} resources named {name}: {[r.name for r in self.resources]}"
        )
        return found[0]

    def type_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for resource in self.resources:
            counts[resource.type] = counts.get(resource.type, 0) + 1
        return counts

    def depends_on(self, resource: Resource, other: Resource) -> bool:
        """Whether `resource` waits for `other`, directly, through a component, or through
        a parent (a component waits for its children)."""
        seen: set[str] = set()
        stack = [resource.urn]
        while stack:
            urn = stack.pop()
            if urn in seen:
                continue
            seen.add(urn)
            if urn == other.urn:
                return True
            current = next((r for r in self.resources if r.urn == urn), None)
            if current is None:
                continue
            for dependency in current.dependencies:
                stack.append(dependency)
                # Depending on a component means depending on all its children.
                stack.extend(r.urn for r in self.resources if r.parent == dependency)
            stack.extend(
                urns
                for urns_list in current.raw.get("property_dependencies", {}).values()
                for urns in urns_list
            )
        return False


def _harness_environment() -> dict[str, str]:
    """The provider SDKs are large; caching their bytecode outside the tree (even where
    the environment turns writing it off) makes every run after the first fast."""
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    environment["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir(), "jobsearch-pycache"))
    return environment


def run_program(run: StackInput) -> Graph:
    config, secret_keys = resolve(run)
    document = {
        "stack": run.stack,
        "config": config,
        "secret_keys": secret_keys,
        "staging_exports": dict(run.staging_exports) if run.staging_exports else None,
    }
    with tempfile.TemporaryDirectory(prefix="pulumi-mocks-") as workdir:
        source, target = Path(workdir, "input.json"), Path(workdir, "graph.json")
        source.write_text(json.dumps(document))
        completed = subprocess.run(
            [sys.executable, "-m", "tests.infra.pulumi.harness", str(source), str(target)],
            cwd=ROOT,
            env=_harness_environment(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if completed.returncode != 0 or not target.exists():
            raise AssertionError(f"the harness failed:\n{completed.stderr[-4000:]}")
        result = json.loads(target.read_text())
    return Graph(
        stack=result["stack"],
        resources=[
            Resource(
                urn=r["urn"],
                type=r["type"],
                name=r["name"],
                parent=r["parent"],
                provider=r["provider"],
                inputs=r["inputs"],
                dependencies=r["dependencies"],
                additional_secret_outputs=r["additional_secret_outputs"],
                delete_before_replace=r["delete_before_replace"],
                ignore_changes=r["ignore_changes"],
                protect=r["protect"],
                custom=r["custom"],
                raw=r,
            )
            for r in result["resources"]
        ],
        reads=result["reads"],
        raw_outputs=result["outputs"],
        logs=result["logs"],
        error=result["error"],
    )
