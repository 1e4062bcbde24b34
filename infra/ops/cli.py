"""`ops`: status, diagnosis, rollback and migrations for a stack, and the local topology.

Each command group lives in its own module and registers itself here. Every
command prints for a person by default and JSON with --json; on a bad
argument or an unreachable target it says what is wrong and exits non-zero.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import import_module

# Modules that add subcommands: each has `register(subparsers) -> None` and sets
# `handler` (a callable taking the parsed args, returning an exit code) on its parsers.
COMMAND_MODULES = (
    "infra.ops.local",
    "infra.ops.status",
    "infra.ops.diagnose",
    "infra.ops.rollback",
    "infra.ops.migrations_cmd",
)

Handler = Callable[[argparse.Namespace], int]


class OpsError(Exception):
    """A failure to report in one line, with exit code 1."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ops", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        code = handler(args)
    except OpsError as error:
        print(f"ops: error: {error}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)
