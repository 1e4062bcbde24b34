"""`ops`: status, diagnosis, rollback and migrations for a stack, and the local topology.

Each verb is declared once, as a `Command` its module exports (`COMMAND`); this
module turns the declarations into one argparse tree. Every command prints for
a person by default and JSON with --json; on a bad argument or an unreachable
target it says what is wrong and exits non-zero. A verb has one way in: the
local instances are stacks too (`ops status --stack local`, `ops rollback
--stack local`); `ops local` holds only what has no Pulumi counterpart
(up, rollout, down, fault).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import import_module

# The modules whose `COMMAND` is a top-level verb, in the order `ops --help` lists them.
COMMAND_MODULES = (
    "infra.ops.local",
    "infra.ops.status",
    "infra.ops.diagnose",
    "infra.ops.rollback",
    "infra.ops.migrations_cmd",
)

Handler = Callable[[argparse.Namespace], int]
Arguments = Callable[[argparse.ArgumentParser], None]


class OpsError(Exception):
    """A failure to report in one line, with exit code 1."""


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


@dataclass(frozen=True)
class Command:
    """One verb: a leaf with `run`, or a group of `subcommands`.

    `arguments` adds the verb's own options; `json` adds the --json flag every
    leaf that reports shares.
    """

    name: str
    help: str
    run: Handler | None = None
    description: str | None = None
    arguments: Arguments = _no_arguments
    json: bool = False
    subcommands: tuple[Command, ...] = ()
    subcommand_metavar: str = "COMMAND"

    def __post_init__(self) -> None:
        if (self.run is None) == (not self.subcommands):
            raise ValueError(f"ops {self.name}: a command has either run or subcommands")


def add_command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], command: Command
) -> None:
    parser = subparsers.add_parser(
        command.name,
        help=command.help,
        description=command.description or command.help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.arguments(parser)
    if command.json:
        parser.add_argument(
            "--json", action="store_true", help="print one JSON document instead of text"
        )
    if command.subcommands:
        nested = parser.add_subparsers(
            dest=f"{command.name}_command", required=True, metavar=command.subcommand_metavar
        )
        for subcommand in command.subcommands:
            add_command(nested, subcommand)
    else:
        parser.set_defaults(handler=command.run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ops", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        add_command(subparsers, import_module(module_name).COMMAND)
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
