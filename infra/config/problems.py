"""A bad stack config, told once: every problem, each with the command that fixes it."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra.config.keys import Key
from infra.config.model import KEYS_BY_NAME


class ConfigError(pulumi.RunError):
    """Bad stack configuration, reported without a stack trace."""


@dataclass(frozen=True)
class Problem:
    key: Key
    reason: str

    def line(self, stack: str) -> str:
        return f"  - {self.key.full_name} {self.reason}.\n    Fix: {self.key.fix(stack)}"


def problem(name: str, reason: str) -> Problem:
    """A problem with the declared key `name` (camelCase, without the project)."""
    return Problem(KEYS_BY_NAME[name], reason)


def format_problems(stack: str, problems: list[Problem]) -> str:
    lines = "\n".join(item.line(stack) for item in problems)
    return f'stack "{stack}" is not configured correctly:\n{lines}'


def dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[str, str]] = set()
    unique = []
    for item in problems:
        marker = (item.key.name, item.reason)
        if marker not in seen:
            seen.add(marker)
            unique.append(item)
    return unique
