"""Just enough of sh to find the commands a runbook's code blocks run.

Each ```sh block is split into simple commands at |, ||, &&, ; and &; command
substitutions `$(...)` and the remote command of `ssh HOST CMD` are commands
too. Variable assignments and redirections are not. This is not a shell: it
reads the kind of one-liners runbooks hold, and the tests check it finds them.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

FENCE = re.compile(r"^```(?P<lang>[\w-]*)\n(?P<body>.*?)^```", re.MULTILINE | re.DOTALL)
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
SEPARATORS = {"|", "||", "&&", ";", "&", "(", ")"}
REDIRECTIONS = {">", ">>", "<", ">&", "<&", "2>", "&>", ">|"}
SUBSTITUTION = "__SUBSTITUTION__"
SSH_OPTIONS_WITH_VALUE = {"-i", "-p", "-o", "-l", "-F", "-J"}


@dataclass(frozen=True)
class Block:
    lang: str
    body: str
    line: int


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    line: int
    text: str

    @property
    def name(self) -> str:
        return self.argv[0].rsplit("/", 1)[-1]

    def literal(self, index: int) -> bool:
        token = self.argv[index]
        return "$" not in token and SUBSTITUTION not in token


def blocks(markdown: str) -> list[Block]:
    found = []
    for match in FENCE.finditer(markdown):
        line = markdown.count("\n", 0, match.start()) + 2
        found.append(Block(match["lang"], match["body"], line))
    return found


def _substitutions(text: str) -> tuple[str, list[str]]:
    """Replace each `$(...)` with a placeholder; return the text and the inner commands."""
    out: list[str] = []
    inner: list[str] = []
    index = 0
    while index < len(text):
        if text.startswith("$(", index):
            depth, cursor, quote = 1, index + 2, ""
            while cursor < len(text) and depth:
                char = text[cursor]
                if quote:
                    if char == quote:
                        quote = ""
                elif char in "'\"":
                    quote = char
                elif char == "(":
                    depth += 1
                elif char == ")":
                    depth -= 1
                cursor += 1
            inner.append(text[index + 2 : cursor - 1])
            out.append(SUBSTITUTION)
            index = cursor
        else:
            out.append(text[index])
            index += 1
    return "".join(out), inner


def _tokens(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|<>()")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return list(lexer)


def _split(tokens: list[str]) -> list[list[str]]:
    commands: list[list[str]] = [[]]
    skip_next = False
    for token in tokens:
        if skip_next:
            skip_next = False
            continue
        if token in SEPARATORS:
            commands.append([])
        elif token in REDIRECTIONS:
            # `2>&1`: the 2 was read as an argument; the 1 is the redirection's target.
            if commands[-1] and commands[-1][-1].isdigit():
                commands[-1].pop()
            skip_next = True
        else:
            commands[-1].append(token)
    return [command for command in commands if command]


def _ssh_remote(argv: list[str]) -> str | None:
    """The command `ssh [options] destination command...` runs on the host."""
    index = 1
    while index < len(argv) and argv[index].startswith("-"):
        index += 2 if argv[index] in SSH_OPTIONS_WITH_VALUE else 1
    remote = argv[index + 1 :]
    if not remote:
        return None
    return remote[0] if len(remote) == 1 else shlex.join(remote)


def commands(text: str, line: int = 1) -> list[Command]:
    """Every simple command in a block of sh."""
    found: list[Command] = []
    joined = text.replace("\\\n", " ")
    for offset, raw in enumerate(joined.splitlines()):
        flat, inner = _substitutions(raw)
        for nested in inner:
            found.extend(commands(nested, line + offset))
        try:
            tokens = _tokens(flat)
        except ValueError as error:
            raise ValueError(f"line {line + offset}: cannot split {raw!r}: {error}") from None
        for words in _split(tokens):
            argv = list(words)
            while argv and ASSIGNMENT.match(argv[0]):
                argv = argv[1:]
            if not argv:
                continue
            found.append(Command(tuple(argv), line + offset, raw.strip()))
            if argv[0] == "ssh":
                remote = _ssh_remote(argv)
                if remote:
                    found.extend(commands(remote, line + offset))
    return found
