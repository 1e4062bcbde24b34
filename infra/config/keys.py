"""How a `StackConfig` field declares its stack config key, and the `Key` view of it.

A field's camelCase alias is the key's name (`cache_ttl_minutes` is
`jobsearch:cacheTtlMinutes`); `key()` gives it its description and the example
the "Fix:" command shows; `setting()` declares a key that sets one of the
service's settings, whose default and description come from the service's own
`jobsearch.settings.Settings` field. Secret-ness is the type: `SecretStr`, or
`OptionalSecret` where a blank value means unset. Everything else (Pulumi.yaml's
declaration, the fix commands, the settings the stack hands the service) is
derived from these fields by `keys_of`.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, Field, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from infra.topology import PROJECT
from jobsearch.settings import Settings

Kind = Literal["string", "integer", "boolean", "array"]
Default = str | int | bool | tuple[str, ...]
_SET_ENCRYPTED = " Secret: set it with --secret."


def _blank_is_unset(value: object) -> object:
    if isinstance(value, str) and not value.strip():
        return None
    return value


# A secret a stack may leave empty: blank means unset.
OptionalSecret = Annotated[SecretStr | None, BeforeValidator(_blank_is_unset)]


def key(default: Any = PydanticUndefined, *, example: str, description: str) -> Any:
    """A stack config key. Without a default, every stack must set it. `example` is what
    the fix command shows; <angle brackets> mark a placeholder."""
    return Field(default, description=description, json_schema_extra={"example": example})


def setting(name: str, *, example: str, description: str | None = None) -> Any:
    """A key that sets the service setting `name` (e.g. CACHE_TTL_MINUTES): its default
    is the service's own, so that one number governs both."""
    service = Settings.model_fields[name.lower()]
    default = service.get_default(call_default_factory=True)
    if isinstance(default, list):
        default = tuple(default)
    return Field(
        default,
        description=description or f"{name} of the service: {service.description}",
        json_schema_extra={"example": example, "setting": name},
    )


@dataclass(frozen=True)
class Key:
    """One config key, as Pulumi.yaml declares it, derived from its field."""

    name: str
    kind: Kind
    description: str
    example: str
    # None: every stack must set it (Pulumi.yaml gives no default).
    default: Default | None = None
    secret: bool = False
    # The StackConfig field, and the service setting it sets, if any.
    field: str = ""
    setting: str | None = None
    # A key no stack may carry: its fix removes it.
    refused: bool = False

    @property
    def full_name(self) -> str:
        return f"{PROJECT}:{self.name}"

    def fix(self, stack: str) -> str:
        if self.refused:
            return f"pulumi config rm {self.full_name} -s {stack}"
        if self.kind == "array":
            return f"pulumi config set --path '{self.full_name}[0]' {self.example} -s {stack}"
        flag = {"integer": " --type int", "boolean": " --type bool"}.get(self.kind, "")
        if self.secret:
            flag = " --secret"
        return f"pulumi config set{flag} {self.full_name} {self.example} -s {stack}"


def _without_none(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return members[0] if len(members) == 1 else annotation
    return annotation


def _kind(annotation: Any) -> Kind:
    inner = _without_none(annotation)
    if inner is bool:
        return "boolean"
    if inner is int:
        return "integer"
    if typing.get_origin(inner) is tuple:
        return "array"
    return "string"


def _pulumi_default(value: Any, kind: Kind) -> Default | None:
    if value is PydanticUndefined:
        return None
    if value is None:
        # Unset, as Pulumi.yaml says it: a default cannot be encrypted or null.
        return ""
    if kind == "array":
        return tuple(value)
    if isinstance(value, (str, int, bool)):
        return value
    return str(value)


def _key(name: str, info: FieldInfo) -> Key:
    extra = info.json_schema_extra
    if not isinstance(extra, dict):
        raise TypeError(f"{name} is not declared with key() or setting()")
    kind = _kind(info.annotation)
    secret = _without_none(info.annotation) is SecretStr
    required = info.default is PydanticUndefined
    description = info.description or ""
    if secret and not required:
        description += _SET_ENCRYPTED
    setting_name = extra.get("setting")
    return Key(
        name=info.alias or name,
        kind=kind,
        description=description,
        example=str(extra["example"]),
        default=_pulumi_default(info.default, kind),
        secret=secret,
        field=name,
        setting=str(setting_name) if setting_name else None,
    )


def keys_of(model: type[BaseModel]) -> tuple[Key, ...]:
    """Every field declared with `key()` or `setting()`, in declaration order."""
    return tuple(
        _key(name, info)
        for name, info in model.model_fields.items()
        if isinstance(info.json_schema_extra, dict) and "example" in info.json_schema_extra
    )


def refused_key(name: str) -> Key:
    """A key no stack may set (its fix is `pulumi config rm`)."""
    return Key(name, "string", "", "", refused=True)
