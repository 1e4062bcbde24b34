"""The dependency arrows run one way (docs/architecture.md, "Layers").

    service  <-  infra  <-  harness  <-  bench
                                     <-  tests

Each Python file belongs to the layer of its top directory (`service/` is
`jobsearch`). Every import in it, at any depth (a function-level import
counts), may name only its own layer and the layers it is allowed to use. Run-
time references count too: a module path in a string (`python -m tests.x`,
`"bench.app:create_app"`) or a path joined from a layer's directory
(`ROOT / "tests" / ...`), since they tie code to a layer as an import does.

`tests/bench/` is the one exception: it tests bench's own code (the results
page, each benchmark at tiny sizes), so it may import bench.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# Top directory -> layer; the layer of an imported top-level module.
LAYER_OF_DIRECTORY = {
    "service": "service",
    "infra": "infra",
    "harness": "harness",
    "bench": "bench",
    "tests": "tests",
}
LAYER_OF_MODULE = {
    "jobsearch": "service",
    "infra": "infra",
    "harness": "harness",
    "bench": "bench",
    "tests": "tests",
}
# What each layer may use besides itself.
ALLOWED = {
    "service": set(),
    "infra": {"service"},
    "harness": {"service", "infra"},
    "bench": {"service", "infra", "harness"},
    "tests": {"service", "infra", "harness"},
}
# Directories whose files may also use these layers (tests of that layer's own code).
EXCEPTIONS = {Path("tests/bench"): {"bench"}}
SKIPPED_DIRECTORIES = {".venv", ".cache", "node_modules", ".git", "__pycache__"}
# This file names every layer as data (its synthetic trees).
SKIPPED_FILES = {Path("tests/test_layers.py")}

# "tests.support.x", "bench.bare_app:create_app", "tests/images/fakes"; never prose.
_REFERENCE = re.compile(
    r"(?P<top>[a-z_]+)(?:\.[A-Za-z_][\w.]*(?::[A-Za-z_]\w*)?|/[\w./-]*)",
)


@dataclass(frozen=True)
class Violation:
    path: Path
    line: int
    layer: str
    uses: str
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.layer} uses {self.uses} ({self.what})"


def layer_of(relative: Path) -> str | None:
    return LAYER_OF_DIRECTORY.get(relative.parts[0]) if len(relative.parts) > 1 else None


def allowed_for(relative: Path) -> set[str]:
    layer = layer_of(relative)
    assert layer is not None
    allowed = {layer, *ALLOWED[layer]}
    for directory, extra in EXCEPTIONS.items():
        if relative.is_relative_to(directory):
            allowed |= extra
    return allowed


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring nodes: prose may name any directory."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def references(source: str) -> list[tuple[int, str, str]]:
    """(line, top-level module or directory, what) for every import and run-time reference."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    found: list[tuple[int, str, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [
                (node.lineno, alias.name.split(".")[0], f"import {alias.name}")
                for alias in node.names
            ]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0], f"from {node.module} import"))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            # ROOT / "tests" / "images": a path into a layer's directory.
            for side in (node.left, node.right):
                if isinstance(side, ast.Constant) and side.value in LAYER_OF_DIRECTORY:
                    found.append((node.lineno, side.value, f'path / "{side.value}"'))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in skip
            and (match := _REFERENCE.fullmatch(node.value))
        ):
            found.append((node.lineno, match["top"], f'"{node.value}"'))
    return found


def _layer_named(top: str) -> str | None:
    return LAYER_OF_MODULE.get(top) or LAYER_OF_DIRECTORY.get(top)


def violations(root: Path) -> list[Violation]:
    """Every reference under `root` that points against the arrows."""
    found: list[Violation] = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if relative in SKIPPED_FILES or SKIPPED_DIRECTORIES & set(relative.parts):
            continue
        if layer_of(relative) is None:
            continue
        allowed = allowed_for(relative)
        for line, top, what in references(path.read_text()):
            layer = _layer_named(top)
            if layer is not None and layer not in allowed:
                found.append(Violation(relative, line, str(layer_of(relative)), layer, what))
    return found


# Arrows that still point the wrong way, to be removed, never added to: bench builds
# the suite's images (tests/support/docker.py: build_test_images, TestImages) and
# prepares the "test" instance (tests/support/local_topology.py:
# prepare_test_instance); both belong in harness/ (or infra/local/) with only their
# pytest fixtures left in tests/support/. Each entry must still be real.
PENDING: set[tuple[str, str]] = set()


def test_every_import_follows_the_arrows() -> None:
    found = [v for v in violations(REPO_ROOT) if (str(v.path), v.uses) not in PENDING]
    assert not found, "dependency arrows pointing the wrong way:\n" + "\n".join(map(str, found))


def test_the_pending_list_only_names_arrows_that_still_point_the_wrong_way() -> None:
    real = {(str(v.path), v.uses) for v in violations(REPO_ROOT)}
    assert real >= PENDING, f"fixed, remove from PENDING: {sorted(PENDING - real)}"


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize(
    ("name", "text", "uses"),
    [
        ("service/jobsearch/x.py", "import infra.topology\n", "infra"),
        ("infra/x.py", "from harness.load import Call\n", "harness"),
        ("infra/local/x.py", 'RECIPES = ROOT / "tests" / "images"\n', "tests"),
        ("harness/x.py", "def f():\n    from tests.support import docker\n", "tests"),
        ("harness/x.py", "import bench.report\n", "bench"),
        ("bench/x.py", "from tests.support.docker import build_test_images\n", "tests"),
        ("bench/x.py", 'ARGV = ["python", "-m", "tests.fakes.upstreams"]\n', "tests"),
        ("tests/drills/test_x.py", "from bench.load import BackgroundLoad\n", "bench"),
        ("tests/test_x.py", 'APP = "bench.bare_app:create_app"\n', "bench"),
    ],
)
def test_an_import_against_the_arrows_is_caught(
    tmp_path: Path, name: str, text: str, uses: str
) -> None:
    found = violations(_tree(tmp_path, {name: text}))
    assert [(str(v.path), v.uses) for v in found] == [(name, uses)]


def test_imports_along_the_arrows_and_prose_pass(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "service/jobsearch/x.py": "from jobsearch.settings import Settings\nimport httpx\n",
            "infra/x.py": '"""Reads tests/images, bench.load (prose)."""\nimport jobsearch\n',
            "harness/x.py": "from infra.local import engine\nfrom jobsearch import main\n",
            "bench/x.py": "from harness.load import Call\nMODULE = 'bench.bare_app'\n",
            "tests/x.py": "from harness.servers import free_port\nimport infra\nimport jobsearch\n",
            "tests/bench/test_x.py": "from bench.report import render\n",
            "infra/policy/x.py": 'tests = spec.get("tests")\n',
        },
    )
    assert violations(root) == []
