"""What keeps a runbook true, as functions that list the problems in a text.

The tests run them over runbooks/ and docs/operations.md (expecting none) and
over broken snippets (expecting each problem to be found).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import re
import tomllib
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import yaml

from infra import promotion
from infra.ops.cli import build_parser
from infra.topology import Environment, Images, TopologySpec, describe
from jobsearch.settings import Settings
from tests.runbooks.shell import SUBSTITUTION, Command, blocks, commands

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "runbooks"

# Programs runbooks may call that are not this project's. Anything else is a
# typo or a tool a reader would not have.
EXTERNAL_TOOLS = frozenset(
    {
        "cat", "curl", "cut", "dig", "docker", "echo", "export", "gh", "git", "grep", "head", "jq",
        "ls", "openssl", "psql", "pytest", "redis-cli", "sort", "source", "ssh", "sudo",
        "supabase", "tail", "timeout", "uniq",
    }
)  # fmt: skip
# UPPER_CASE names a runbook may use that are not service settings, each with the
# file that defines it (checked, so that this list cannot go stale either).
NOT_SETTINGS = {
    "PULUMI_ACCESS_TOKEN": ".github/workflows/deploy.yml",
    "PULUMI_ORGANIZATION": ".github/workflows/deploy.yml",
    "SMOKE_SSH_KEY": ".github/workflows/deploy.yml",
    "DEPLOY_SSH_KEY": ".github/workflows/deploy.yml",
    "PULUMI_TEAM": ".github/workflows/ci.yml",
    "PULUMI_CONFIG_PASSPHRASE": ".github/workflows/deploy.yml",
    "SMOKE_BASE_URL": "tests/smoke/conftest.py",
    "BACKEND_URL": "infra/components/frontend.py",
    "DB_URL": "infra/ops/diagnose.py",
}
# The `supabase inspect db` reports runbooks may name: those tests/runbooks/
# test_database_commands.py runs against the machine's PostgreSQL.
SUPABASE_INSPECTIONS = frozenset(
    {"bloat", "blocking", "db-stats", "locks", "long-running-queries", "table-stats"}
)
# Programs that take a connection string: the password must not be on their
# command line, where `ps` shows it (review L8); they read PGPASSFILE instead.
DATABASE_CLIENTS = frozenset({"psql", "pg_dump", "supabase"})
URL_WITH_PASSWORD = re.compile(r"://[^/@\s:]*:[^/@\s]+@")
UPPER_NAME = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")
CONFIG_KEY = re.compile(r"\bjobsearch:([A-Za-z]+)\b")
REPO_PATH = re.compile(
    r"(?<![\w./-])((?:\.github|infra|service|tests|runbooks|docs|bench)/[\w./-]*\w)"
)
CONTAINER = re.compile(r"\bjobsearch-(?:\$STACK|\$\{STACK\}|staging|prod|local)-([a-z]+)\b")
LABEL = re.compile(r"\borg\.jobsearch\.([a-z]+)=([\w-]+)")
LINK = re.compile(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)")
STACK_PLACEHOLDER: Environment = "prod"


def settings_names() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


@cache
def pulumi_config_keys() -> frozenset[str]:
    document = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    return frozenset(document.get("config") or {})


@cache
def stack_outputs() -> frozenset[str] | None:
    """What infra/__main__.py exports; None until the program exists.

    Its outputs are the string keys of the dict `main()` returns (pulumi.run),
    or the names given to pulumi.export.
    """
    program = ROOT / "infra" / "__main__.py"
    if not program.exists():
        return None
    tree = ast.parse(program.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef) and node.name == "main":
            for inner in ast.walk(node):
                if isinstance(inner, ast.Return) and isinstance(inner.value, ast.Dict):
                    names |= {
                        key.value
                        for key in inner.value.keys
                        if isinstance(key, ast.Constant) and isinstance(key.value, str)
                    }
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "export"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(str(node.args[0].value))
    # The image outputs: `**image_outputs(...)` in main(), named by infra/promotion.py.
    names |= set(promotion.OUTPUTS)
    return frozenset(names)


@cache
def make_targets() -> frozenset[str]:
    text = (ROOT / "Makefile").read_text()
    return frozenset(re.findall(r"^([A-Za-z][\w-]*):", text, re.MULTILINE))


@cache
def console_scripts() -> frozenset[str]:
    document = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return frozenset(document["project"]["scripts"])


def _ops_parser_for(path: list[str]) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in path:
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        parser = actions[0].choices[name]
    return parser


def _ops_command_path(argv: tuple[str, ...]) -> list[str]:
    path: list[str] = []
    parser = build_parser()
    for token in argv[1:]:
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not actions or token not in actions[0].choices:
            break
        path.append(token)
        parser = actions[0].choices[token]
    return path


def _exits_zero(argv: list[str]) -> bool:
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        try:
            build_parser().parse_args(argv)
        except SystemExit as exited:
            return exited.code in (0, None)
    return True


def check_ops(command: Command) -> list[str]:
    where = f"line {command.line}: `{command.text}`"
    path = _ops_command_path(command.argv)
    if not path:
        return [f"{where}: `ops {' '.join(command.argv[1:2])}` is not an ops command"]
    if not _exits_zero([*path, "--help"]):
        return [f"{where}: `ops {' '.join(path)} --help` does not exit 0"]
    problems = []
    parser = _ops_parser_for(path)
    known = {option for action in parser._actions for option in action.option_strings}
    rest = list(command.argv[1 + len(path) :])
    for token in rest:
        if token.startswith("--") and token.split("=", 1)[0] not in known:
            problems.append(f"{where}: `ops {' '.join(path)}` has no option {token}")
    literal = all(command.literal(i) for i in range(len(command.argv)))
    if not problems and literal and not _exits_zero(list(command.argv[1:])):
        problems.append(f"{where}: ops refuses these arguments")
    return problems


def check_pulumi(command: Command) -> list[str]:
    where = f"line {command.line}: `{command.text}`"
    argv = command.argv
    problems = []
    if argv[1:3] == ("stack", "output"):
        names = [t for t in argv[3:] if not t.startswith("-") and t not in _flag_values(argv)]
        outputs = stack_outputs()
        if outputs is not None:
            problems += [
                f"{where}: the stacks export no output {name!r} (infra/__main__.py)"
                for name in names
                if name not in outputs
            ]
    for flag in ("--policy-pack",):
        if flag in argv:
            target = argv[argv.index(flag) + 1]
            if not (ROOT / target).exists():
                problems.append(f"{where}: {flag} {target} does not exist")
    for flag in ("-s", "--stack"):
        if flag in argv:
            index = argv.index(flag) + 1
            if command.literal(index) and argv[index] not in ("staging", "prod"):
                problems.append(f"{where}: no stack {argv[index]!r} (staging or prod)")
    return problems


def check_database_client(command: Command) -> list[str]:
    where = f"line {command.line}: `{command.text}`"
    problems = [
        f"{where}: a password on the command line (`ps` shows it); use PGPASSFILE and DB_URL"
        for token in command.argv[1:]
        if "DATABASE_URL" in token or URL_WITH_PASSWORD.search(token)
    ]
    if command.name == "supabase":
        inspection = command.argv[1:4]
        if inspection[:2] != ("inspect", "db") or len(inspection) < 3:
            problems.append(f"{where}: runbooks use the Supabase CLI for `inspect db` only")
        elif inspection[2] not in SUPABASE_INSPECTIONS:
            problems.append(f"{where}: `supabase inspect db {inspection[2]}` is not tested here")
        elif "--db-url" not in command.argv:
            problems.append(f"{where}: `supabase inspect db` without --db-url inspects nothing")
    return problems


def _flag_values(argv: tuple[str, ...]) -> set[str]:
    return {argv[i + 1] for i, token in enumerate(argv[:-1]) if token in ("-s", "--stack")}


def check_command(command: Command) -> list[str]:
    where = f"line {command.line}: `{command.text}`"
    name = command.name
    if name == "ops":
        return check_ops(command)
    if name == "pulumi":
        return check_pulumi(command)
    if name == "make":
        return [
            f"{where}: the Makefile has no target {target!r}"
            for target in command.argv[1:]
            if "=" not in target and not target.startswith("-") and target not in make_targets()
        ]
    if name in console_scripts():
        return []
    if name in DATABASE_CLIENTS:
        problems = check_database_client(command)
        if problems:
            return problems
    if name.startswith(SUBSTITUTION):
        return [f"{where}: runs the output of a command substitution"]
    if name not in EXTERNAL_TOOLS:
        return [f"{where}: {name!r} is neither this project's command nor a known tool"]
    return []


def check_commands(text: str) -> list[str]:
    problems = []
    for block in blocks(text):
        if block.lang not in ("sh", "text", "json"):
            problems.append(
                f"line {block.line}: code block in {block.lang or 'no language'}, not sh"
            )
        if block.lang != "sh":
            continue
        for command in commands(block.body, block.line):
            problems.extend(check_command(command))
    return problems


def check_settings(text: str) -> list[str]:
    known = settings_names() | set(NOT_SETTINGS)
    return [
        f"{name} is neither a setting (jobsearch.settings.Settings) nor a known variable"
        for name in sorted(set(UPPER_NAME.findall(text)))
        if name not in known
    ]


def check_config_keys(text: str) -> list[str]:
    return [
        f"jobsearch:{key} is not declared in Pulumi.yaml"
        for key in sorted(set(CONFIG_KEY.findall(text)))
        if key not in pulumi_config_keys()
    ]


def check_paths(text: str) -> list[str]:
    return [
        f"{path} does not exist"
        for path in sorted(set(REPO_PATH.findall(text)))
        if not (ROOT / path).exists()
    ]


def check_links(text: str, directory: Path) -> list[str]:
    return [
        f"link to {target} goes nowhere"
        for target in sorted(set(LINK.findall(text)))
        if "://" not in target and not (directory / target).exists()
    ]


@cache
def _topology_names() -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    topology = describe(
        TopologySpec(environment=STACK_PLACEHOLDER, images=Images(service="x"), domain="x.test")
    )
    containers = topology.services
    roles = frozenset(
        spec.name.removeprefix(f"{topology.prefix}-").split("-")[0] for spec in containers
    )
    labels: dict[str, set[str]] = {}
    for spec in containers:
        for key, value in spec.labels.items():
            labels.setdefault(key.removeprefix("org.jobsearch."), set()).add(value)
    labels["environment"] |= {"local", "test", "staging", "prod"}
    return roles, {key: frozenset(values) for key, values in labels.items()}


def check_container_names(text: str) -> list[str]:
    roles, labels = _topology_names()
    problems = [
        f"no service jobsearch-<stack>-{role} in infra/topology.py"
        for role in sorted(set(CONTAINER.findall(text)))
        if role not in roles
    ]
    for key, value in sorted(set(LABEL.findall(text))):
        if key not in labels:
            problems.append(f"no label org.jobsearch.{key} in infra/topology.py")
        elif value not in labels[key]:
            problems.append(f"org.jobsearch.{key} is never {value!r} in infra/topology.py")
    return problems


def all_problems(text: str, directory: Path = RUNBOOKS) -> list[str]:
    checks: Iterable[list[str]] = (
        check_commands(text),
        check_settings(text),
        check_config_keys(text),
        check_paths(text),
        check_links(text, directory),
        check_container_names(text),
    )
    return [problem for found in checks for problem in found]
