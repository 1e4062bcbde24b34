"""The settings' reference, rendered from `Settings`' fields: `.env.example` and the README table.

Both are generated (infra/generated.py, `make generate`), so a setting is
documented where it is declared: its name, default, secrecy and description
come from its field in jobsearch.settings and nowhere else.

`.env.example` states each default in a commented line (`# NAME=default`):
a `.env` copied from it sets nothing but what its owner uncomments, so a
default changed in the code reaches every developer.
"""

from __future__ import annotations

import textwrap
from typing import get_args

from pydantic import SecretStr
from pydantic.fields import FieldInfo

from jobsearch.settings import Settings

# What a developer's `.env` sets on purpose, though the code's default differs:
# the frontend's development server may call the API from a browser.
DEVELOPMENT_VALUES = {"cors_origins": "http://localhost:3000"}
WIDTH = 95

ENV_EXAMPLE_HEADER = """\
# Every setting of the job-search API, generated from service/jobsearch/settings.py by
# `make generate`: edit the field there, not this file. Copy to .env for `make run`.
# A commented line shows the default; uncomment only what you set, so that a copied
# .env never freezes a default. Secrets never go in git.
"""


def is_secret(field: FieldInfo) -> bool:
    return field.annotation is SecretStr or SecretStr in get_args(field.annotation)


def env_value(field: FieldInfo) -> str:
    """The default as a `.env` line writes it; "" when unset or empty."""
    default = field.get_default(call_default_factory=True)
    if default is None:
        return ""
    if isinstance(default, list):
        return ",".join(str(item) for item in default)
    return str(default)


def default_text(field: FieldInfo) -> str:
    """The default as the README states it."""
    if field.get_default(call_default_factory=True) is None:
        return "unset"
    return env_value(field) or "empty"


def _description(variable: str, field: FieldInfo) -> str:
    text = " ".join((field.description or "").split())
    if not text:
        raise ValueError(f"{variable}: every setting needs a description= (its documentation)")
    return text


def render_env_example(_current: str = "") -> str:
    blocks = [ENV_EXAMPLE_HEADER]
    for name, field in Settings.model_fields.items():
        variable = name.upper()
        description = _description(variable, field)
        if is_secret(field):
            description += " (secret)"
        lines = textwrap.wrap(description, WIDTH - 2)
        comment = "".join(f"# {line}\n" for line in lines)
        if name in DEVELOPMENT_VALUES:
            comment += f"# (a development value; the default is {default_text(field)})\n"
            blocks.append(f"{comment}{variable}={DEVELOPMENT_VALUES[name]}\n")
        else:
            blocks.append(f"{comment}# {variable}={env_value(field)}\n")
    return "\n".join(blocks)


def settings_table() -> str:
    rows = ["| Setting | Default | Secret | Meaning |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        variable = name.upper()
        description = _description(variable, field).replace("|", "\\|")
        secret = "yes" if is_secret(field) else "no"
        rows.append(f"| `{variable}` | {default_text(field)} | {secret} | {description} |")
    return "\n".join(rows) + "\n"
