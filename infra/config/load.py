"""Reading the running stack's config into one `StackConfig`, before any resource exists.

Anything missing or wrong stops the program with one message that names each
bad key and the `pulumi config` command that fixes it. A secret's value never
appears in that message, in a log or in a stack output.
"""

from __future__ import annotations

import json
from typing import Protocol

import pulumi
from pydantic import SecretStr, ValidationError
from pydantic.alias_generators import to_camel

from infra.config.keys import Key, refused_key
from infra.config.model import KEYS, KEYS_BY_NAME, STACK_ENVIRONMENTS, StackConfig
from infra.config.problems import ConfigError, Problem, dedupe, format_problems, problem
from infra.config.rules import RULES
from infra.config.standins import refused_stack_keys
from infra.topology import PROJECT


class ConfigSource(Protocol):
    def get(self, key: str) -> str | None: ...

    def is_secret(self, key: str) -> bool: ...


class PulumiConfigSource:
    """The running stack's configuration (values arrive decrypted)."""

    def __init__(self) -> None:
        self._config = pulumi.Config(PROJECT)

    def get(self, key: str) -> str | None:
        return self._config.get(key)

    def is_secret(self, key: str) -> bool:
        return pulumi.runtime.is_config_secret(self._config.full_key(key))


def secret(value: SecretStr) -> pulumi.Output[str]:
    """A config secret as a Pulumi secret: encrypted in state, [secret] in previews."""
    wrapped: pulumi.Output[str] = pulumi.Output.secret(value.get_secret_value())
    return wrapped


def _parse_raw(key: Key, raw: str) -> str | int | bool | tuple[str, ...]:
    # The CLI passes every value as a string; lists arrive JSON-encoded.
    if key.kind == "integer":
        try:
            return int(raw.strip())
        except ValueError:
            raise ValueError(f"must be a whole number (got {raw!r})") from None
    if key.kind == "boolean":
        lowered = raw.strip().lower()
        if lowered not in ("true", "false"):
            raise ValueError(f"must be true or false (got {raw!r})")
        return lowered == "true"
    if key.kind == "array":
        try:
            items = json.loads(raw)
        except ValueError:
            items = None
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise ValueError("must be a list of strings (set each item with --path)")
        return tuple(item.strip() for item in items if item.strip())
    return raw


def _read(source: ConfigSource, key: Key) -> tuple[object, Problem | None]:
    raw = source.get(key.name)
    if raw is None:
        if key.default is None:
            return None, Problem(key, "is not set")
        return key.default, None
    if key.secret and raw.strip() and not source.is_secret(key.name):
        return None, Problem(key, "is stored in plain text; store it encrypted")
    try:
        return _parse_raw(key, raw), None
    except ValueError as error:
        return None, Problem(key, str(error))


def _validation_problems(error: ValidationError) -> list[Problem]:
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        alias = str(item["loc"][0]) if item["loc"] else ""
        key = KEYS_BY_NAME.get(alias) or KEYS_BY_NAME.get(to_camel(alias))
        if key is None:
            raise error
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "literal_error":
            message = message.replace("Input should be", "must be")
        problems.append(Problem(key, message))
    return problems


def _environment(stack: str, source: ConfigSource) -> tuple[str, list[Problem]]:
    declared = (source.get("environment") or "").strip()
    environment = declared or stack
    if environment not in STACK_ENVIRONMENTS:
        reason = (
            f"is not set and the stack name {stack!r} is not one of {', '.join(STACK_ENVIRONMENTS)}"
            if not declared
            else f"must be one of {', '.join(STACK_ENVIRONMENTS)} (got {declared!r})"
        )
        return environment, [problem("environment", reason)]
    return environment, []


# Keys a stack may still carry from before, which nothing reads any more: refused, so
# that a setting which no longer does anything does not look as if it did.
RETIRED_KEYS = {
    "stateDir": "no longer used: Caddy's certificates live in the Docker volume "
    f"{PROJECT}-<stack>-caddy-data, and its Caddyfile is a Docker config",
}


def _refused(source: ConfigSource) -> list[Problem]:
    """Keys no stack may set: those that would point the service at local stand-ins
    (infra/config/standins.py), and retired keys."""
    stand_ins = "points the service at local stand-ins: never on a stack"
    reasons = {**dict.fromkeys(refused_stack_keys(), stand_ins), **RETIRED_KEYS}
    return [
        Problem(refused_key(name), reason)
        for name, reason in reasons.items()
        if source.get(name) is not None
    ]


def load(stack: str, source: ConfigSource) -> StackConfig:
    """Read and check every key; raise ConfigError listing every problem at once."""
    environment, problems = _environment(stack, source)
    problems.extend(_refused(source))
    values: dict[str, object] = {"stack": stack, "environment": environment}
    for key in KEYS:
        if key.name == "environment":
            continue
        value, found = _read(source, key)
        if found is not None:
            problems.append(found)
        else:
            values[key.name] = value
    if problems:
        raise ConfigError(format_problems(stack, problems))
    try:
        config = StackConfig.model_validate(values)
    except ValidationError as error:
        raise ConfigError(format_problems(stack, _validation_problems(error))) from None
    for rule in RULES:
        problems.extend(rule(config))
    if problems:
        raise ConfigError(format_problems(stack, dedupe(problems)))
    return config
