"""The few `pulumi` CLI calls `ops` makes for the staging and prod stacks.

The CLI rather than the Automation API: it is what the runbooks show and what
CI runs, so `ops` fails the same way a person typing the command would. The
JSON shapes read here are the CLI's documented ones (the Automation API parses
the same documents).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.ops.cli import OpsError
from infra.promotion import IMAGE_CONFIG_KEY

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STACKS = ("staging", "prod")
# Exported by infra/__main__.py (the image outputs: infra/promotion.py).
URL_OUTPUT = "url"
# The swarm manager's engine, as DOCKER_HOST takes it (ssh://user@host:port).
DOCKER_HOST_OUTPUT = "docker_host"
# Every update goes through the guardrails, rollbacks included.
POLICY_PACK = "infra/policy"

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
INSTALL_HINT = "install it (https://www.pulumi.com/docs/iac/download-install/) and `pulumi login`"


def with_repository(digest_or_ref: str, current_ref: str | None) -> str:
    """Complete a bare digest with the repository of the image running now."""
    if "@" in digest_or_ref:
        return digest_or_ref
    if not current_ref or "@" not in current_ref:
        raise OpsError(
            f"cannot tell which repository {digest_or_ref} belongs to; "
            "pass the full reference, e.g. --to ghcr.io/OWNER/REPO@" + digest_or_ref
        )
    return f"{current_ref.rpartition('@')[0]}@{digest_or_ref}"


@dataclass(frozen=True)
class Update:
    version: int | None
    kind: str
    result: str
    started: datetime
    ended: datetime | None
    image_ref: str | None

    @classmethod
    def parse(cls, document: dict[str, Any]) -> Update:
        config = document.get("config") or {}
        image = config.get(IMAGE_CONFIG_KEY) or {}
        return cls(
            version=document.get("version"),
            kind=str(document.get("kind", "")),
            result=str(document.get("result", "")),
            started=_parse_time(document["startTime"]),
            ended=_parse_time(document["endTime"]) if document.get("endTime") else None,
            image_ref=None if image.get("secret") else image.get("value"),
        )


def _parse_time(value: str) -> datetime:
    return datetime.strptime(value, _TIME_FORMAT).replace(tzinfo=UTC)


def last_deploy(history: list[Update]) -> Update | None:
    """The newest `pulumi up` that succeeded (history is newest first)."""
    return next((u for u in history if u.kind == "update" and u.result == "succeeded"), None)


def previous_image(history: list[Update], current: str | None) -> str | None:
    """The image the stack ran before `current`, from its successful updates."""
    deployed = [
        u.image_ref
        for u in history
        if u.kind == "update" and u.result == "succeeded" and u.image_ref
    ]
    if current is None and deployed:
        current = deployed[0]
    return next((ref for ref in deployed if ref != current), None)


class PulumiStack:
    def __init__(self, name: str, cwd: Path = PROJECT_ROOT) -> None:
        self.name = name
        self.cwd = cwd

    def _executable(self) -> str:
        found = shutil.which("pulumi")
        if found is None:
            raise OpsError(f"the pulumi CLI is not installed: {INSTALL_HINT}")
        return found

    def _command(self, *args: str) -> list[str]:
        return [self._executable(), *args, "--stack", self.name, "--non-interactive"]

    def _failed(self, args: tuple[str, ...], output: str, code: int) -> OpsError:
        lines = output.strip().splitlines()
        reason = lines[-1] if lines else f"exit status {code}"
        return OpsError(f"`pulumi {' '.join(args)} --stack {self.name}` failed: {reason}")

    def _run(self, *args: str, timeout: float = 120) -> str:
        try:
            completed = subprocess.run(
                self._command(*args),
                cwd=self.cwd,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise OpsError(f"`pulumi {' '.join(args)}` took longer than {timeout:g}s") from None
        if completed.returncode != 0:
            raise self._failed(args, completed.stderr or "", completed.returncode)
        return completed.stdout or ""

    def _stream(self, *args: str) -> None:
        """Run, copying the output to stderr as it comes (stdout stays for --json)."""
        tail: list[str] = []
        with subprocess.Popen(
            self._command(*args),
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as process:
            for line in process.stdout or ():
                sys.stderr.write(line)
                tail = [*tail[-4:], line]
            code = process.wait()
        if code != 0:
            raise self._failed(args, "".join(tail), code)

    def _json(self, *args: str) -> Any:
        text = self._run(*args)
        try:
            return json.loads(text)
        except ValueError:
            raise OpsError(f"`pulumi {' '.join(args)}` did not print JSON") from None

    def outputs(self) -> dict[str, Any]:
        # Without --show-secrets: secret outputs stay "[secret]".
        document = self._json("stack", "output", "--json")
        if not isinstance(document, dict):
            raise OpsError("`pulumi stack output --json` did not print an object")
        return document

    def history(self, page_size: int = 20) -> list[Update]:
        document = self._json(
            "stack", "history", "--json", "--page-size", str(page_size), "--page", "1"
        )
        if not isinstance(document, list):
            raise OpsError("`pulumi stack history --json` did not print a list")
        try:
            return [Update.parse(entry) for entry in document]
        except (KeyError, TypeError, ValueError) as error:
            raise OpsError(f"unexpected `pulumi stack history` entry: {error}") from None

    def output(self, name: str) -> str | None:
        value = self.outputs().get(name)
        return value if isinstance(value, str) else None

    def config_value(self, key: str) -> str | None:
        """The key's value; None when the stack does not set it."""
        try:
            return self._run("config", "get", key).strip()
        except OpsError as error:
            if "not found" in str(error):
                return None
            raise

    def set_config(self, key: str, value: str) -> None:
        self._run("config", "set", key, value)

    def up(self, message: str) -> None:
        # Streamed: the person running it sees the plan and the progress.
        self._stream("up", "--yes", "--policy-pack", POLICY_PACK, "--message", message)
