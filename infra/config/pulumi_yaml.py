"""Pulumi.yaml's `config:` block, rendered from StackConfig (`make generate` writes it).

Pulumi's project schema allows only type, items, description, secret and
default per key, so the example each fix command shows stays in the model.
A default cannot be encrypted: only required secrets are declared secret, and
the program refuses an optional secret stored in plain text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from infra.config.keys import Key
from infra.config.model import KEYS

PATH = Path("Pulumi.yaml")
SECTION = "config"


def declaration(key: Key) -> dict[str, Any]:
    declared: dict[str, Any] = {"type": key.kind}
    if key.kind == "array":
        declared["items"] = {"type": "string"}
    declared["description"] = key.description
    if key.default is None:
        if key.secret:
            declared["secret"] = True
    else:
        declared["default"] = list(key.default) if isinstance(key.default, tuple) else key.default
    return declared


def config_block() -> str:
    document = {"config": {key.name: declaration(key) for key in KEYS}}
    return yaml.safe_dump(document, sort_keys=False, width=100, allow_unicode=True)


def render(current: str) -> str:
    # Imported here: infra/generated.py registers this module.
    from infra.generated import splice  # noqa: PLC0415

    return splice(current, SECTION, config_block(), comment=("#", ""))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;")


def _default_cell(key: Key) -> str:
    if key.default is None:
        return "required"
    if isinstance(key.default, tuple):
        return ", ".join(f"`{item}`" for item in key.default) or "(none)"
    if key.default == "":
        return "(empty)"
    text = str(key.default).lower() if isinstance(key.default, bool) else str(key.default)
    return f"`{text}`"


def key_table() -> str:
    """docs/pulumi.md's reference of every key, from the same model."""
    rows = ["| Key | Type | Default | Secret | What |", "| --- | --- | --- | --- | --- |"]
    for key in KEYS:
        kind = f"{key.kind} (list)" if key.kind == "array" else key.kind
        secret = "yes" if key.secret else ""
        description = key.description.removesuffix(" Secret: set it with --secret.")
        rows.append(
            f"| `{key.name}` | {kind} | {_default_cell(key)} | {secret} | {_cell(description)} |"
        )
    return "\n".join(rows) + "\n"


DOCS_PATH = Path("docs/pulumi.md")


def render_docs(current: str) -> str:
    # Imported here: infra/generated.py registers this module.
    from infra.generated import splice  # noqa: PLC0415

    return splice(current, "stack config keys", key_table())
