"""`ops`: every verb is one `Command` declaration, turned into one argparse tree."""

from __future__ import annotations

import argparse

import pytest

from infra.ops.cli import Command, add_command, build_parser


def _verbs(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found.append((*prefix, name))
                found.extend(_verbs(child, (*prefix, name)))
    return found


def test_each_verb_has_one_way_in() -> None:
    verbs = _verbs(build_parser())
    leaves = {verb[-1] for verb in verbs if len(verb) == 1}
    assert {"local", "status", "diagnose", "rollback", "migrations"} == leaves
    assert ("local", "status") not in verbs
    assert ("local", "rollback") not in verbs
    assert ("local", "fault", "redis") in verbs


def test_json_is_added_by_the_declaration() -> None:
    args = build_parser().parse_args(["status", "--stack", "local", "--json"])
    assert args.json is True
    assert callable(args.handler)


def test_a_command_is_a_leaf_or_a_group_never_both() -> None:
    leaf = Command("leaf", help="x", run=lambda args: 0)
    with pytest.raises(ValueError, match="either run or subcommands"):
        Command("both", help="x", run=lambda args: 0, subcommands=(leaf,))
    with pytest.raises(ValueError, match="either run or subcommands"):
        Command("neither", help="x")


def test_a_group_nests_its_subcommands() -> None:
    parser = argparse.ArgumentParser()
    group = Command(
        "group",
        help="x",
        subcommands=(Command("leaf", help="y", run=lambda args: 7, json=True),),
    )
    add_command(parser.add_subparsers(dest="command"), group)
    args = parser.parse_args(["group", "leaf", "--json"])
    assert (args.group_command, args.json, args.handler(args)) == ("leaf", True, 7)
