"""A stand-in `pulumi` CLI for the staging/prod paths of `ops` (no Pulumi CLI or backend here).

It keeps one stack's state in a JSON file (FAKE_PULUMI_STATE), answers the
commands `ops` runs with the documents the real CLI prints (the shapes the
Pulumi Automation API parses), logs every call, and makes `up` deploy the
configured image. Run as `python -m tests.infra.ops.fake_pulumi ARGS...`.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

IMAGE_KEY = "jobsearch:imageRef"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def install(directory: Path) -> Path:
    """Write an executable `pulumi` into `directory`; put it first on PATH to use it."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "pulumi"
    root = Path(__file__).resolve().parents[3]
    script.write_text(
        f'#!/bin/sh\ncd "{root}" && exec "{sys.executable}" -m tests.infra.ops.fake_pulumi "$@"\n'
    )
    script.chmod(0o755)
    return script


def history_entry(
    version: int, image: str | None, *, result: str = "succeeded", kind: str = "update",
    started: datetime | None = None,
) -> dict[str, Any]:  # fmt: skip
    moment = started or datetime.now(UTC)
    config = {IMAGE_KEY: {"value": image, "secret": False}} if image else {}
    config["jobsearch:rapidApiKey"] = {"secret": True}  # shown without --show-secrets: no value
    return {
        "version": version,
        "kind": kind,
        "startTime": moment.strftime(TIME_FORMAT),
        "endTime": moment.strftime(TIME_FORMAT),
        "message": "",
        "environment": {},
        "config": config,
        "result": result,
        "resourceChanges": {"same": 12},
    }


def _stack_name(args: list[str]) -> str:
    for flag in ("--stack", "-s"):
        if flag in args:
            return args[args.index(flag) + 1]
    raise SystemExit("fake pulumi: no --stack")


# Options of the commands `ops` and the workflows run that take a value.
_VALUED = {"--stack", "-s", "--page-size", "--page", "--message", "-m", "--policy-pack"}


def _positional(args: list[str]) -> list[str]:
    words, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in _VALUED:
            skip = True
        elif not arg.startswith("-"):
            words.append(arg)
    return words


def _deployed_image(stacks: dict[str, Any], stack: dict[str, Any]) -> str | None:
    """What `up` runs: the config's imageRef, else (promoteFrom) the source stack's export."""
    config = stack.get("config", {})
    if config.get(IMAGE_KEY):
        return str(config[IMAGE_KEY])
    source = config.get("jobsearch:promoteFrom")
    if source:
        return str(stacks[source]["outputs"]["image_ref"])
    current = stack["outputs"].get("image_ref")
    return None if current is None else str(current)


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 255


def _stack_command(stack: dict[str, Any], words: list[str]) -> int:
    if words[1] == "history":
        print(json.dumps(stack["history"]))
    elif len(words) == 2:
        print(json.dumps(stack["outputs"]))
    elif words[2] not in stack["outputs"]:
        return _fail(f"error: current stack does not have output property '{words[2]}'")
    else:
        print(stack["outputs"][words[2]])
    return 0


def _config_command(stack: dict[str, Any], words: list[str]) -> int:
    config = stack.setdefault("config", {})
    if words[1] == "set":
        config[words[2]] = words[3]
    elif words[1] == "rm":
        config.pop(words[2], None)
    elif words[2] not in config:
        return _fail(f"error: configuration key '{words[2]}' not found for stack")
    else:
        print(config[words[2]])
    return 0


def _up(stacks: dict[str, Any], name: str) -> int:
    stack = stacks[name]
    if stack.get("fail_up", 0):
        stack["fail_up"] -= 1
        return _fail("error: update failed")
    image = _deployed_image(stacks, stack)
    print(f"Updating ({name})\n    ~ image {image}\nUpdate complete.")
    stack["outputs"]["image_ref"] = image
    version = max((entry["version"] for entry in stack["history"]), default=0) + 1
    stack["history"].insert(0, history_entry(version, image))
    return 0


def _answer(stacks: dict[str, Any], name: str, words: list[str]) -> int:
    stack = stacks[name]
    if words[:1] == ["stack"] and words[1:2] in (["output"], ["history"]):
        return _stack_command(stack, words)
    if words[:1] == ["config"] and words[1:2] in (["set"], ["get"], ["rm"]):
        return _config_command(stack, words)
    if words[:1] == ["preview"]:
        print(f"Previewing update ({name})\n    ~ image\nResources: 1 to update")
        return 255 if stack.get("fail_preview") else 0
    if words[:1] == ["up"]:
        return _up(stacks, name)
    print(f"fake pulumi: unsupported command {words}", file=sys.stderr)
    return 2


def main(args: list[str]) -> int:
    state_path = Path(os.environ["FAKE_PULUMI_STATE"])
    state = json.loads(state_path.read_text())
    state.setdefault("calls", []).append(args)
    name = _stack_name(args)
    if name in state["stacks"]:
        code = _answer(state["stacks"], name, _positional(args))
    else:
        code = _fail(f"error: no stack named '{name}' found")
    state_path.write_text(json.dumps(state))
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
