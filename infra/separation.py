"""Staging and prod never share a database or an API key: checked, not hoped.

Every stack exports `separation`: a one-way fingerprint of the database it
migrates and of each upstream API key it hands the service. A stack that
promotes from another (prod, from staging) reads the source stack's export
through the StackReference it promotes from, and refuses to deploy when any
of its own fingerprints matches, naming the key and the command that fixes it.

Why scrypt of the value with a fixed, public salt, and not HMAC with a secret:
both stacks must compute the same fingerprint from the same value, so a key
they both knew would be a secret staging and prod share (the very thing this
forbids), and a key in the code is public anyway. The export is a plain stack
output: anyone who can read the stack can read it. A bare SHA-256 of a
guessable value (a database host, a short or patterned key) is brute-forced at
billions of guesses a second on a GPU; scrypt (N=2^14, r=8: 16 MiB and about
0.1 s a guess) costs an attacker what it costs us, per guess, and its salt (the
organization and this purpose) makes a table computed in advance useless. The
real keys are long random strings, so the export reveals nothing in practice.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

import pulumi

from infra.config.model import KEYS_BY_NAME, StackConfig
from infra.config.problems import ConfigError, Problem, format_problems

# The stack output, and the scheme its fingerprints were computed with.
OUTPUT = "separation"
SCHEME = "scrypt-n16384-r8-p1-v1"
_N, _R, _P, _LENGTH = 2**14, 8, 1, 32

# What each fingerprinted key means to an engineer, for the refusal.
_WHAT = {
    "databaseUrl": "points at the same database as",
    "rapidApiKey": "is the same RapidAPI (JSearch) key as",
    "theirstackApiKey": "is the same TheirStack key as",
}
_REMEDY = {
    "databaseUrl": "give {stack} a database (a Supabase project) of its own",
    "rapidApiKey": "create a separate key for {stack} and set it",
    "theirstackApiKey": "create a separate key for {stack} and set it",
}
_SUPABASE_DIRECT = re.compile(r"db\.(?P<ref>[a-z0-9]+)\.supabase\.co")


def database_identity(url: str) -> str:
    """Which database server a connection string reaches, whatever way it reaches it.

    Supabase's pooler (`<region>.pooler.supabase.com`) serves every project of
    a region and names the project in the user (`postgres.<ref>`); the direct
    host is `db.<ref>.supabase.co`. Both mean the project. Anything else: the
    host, whatever the port or database name (two databases on one server share
    its load, its backups and its admin).
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    user = parts.username or ""
    if host.endswith(".pooler.supabase.com") and "." in user:
        return f"supabase:{user.rpartition('.')[2].lower()}"
    direct = _SUPABASE_DIRECT.fullmatch(host)
    if direct is not None:
        return f"supabase:{direct['ref']}"
    return host


def separated_values(config: StackConfig) -> dict[str, str]:
    """The values no two environments may share, by config key name (unset ones left out)."""
    values = {
        "databaseUrl": database_identity(config.database_url.get_secret_value()),
        "rapidApiKey": config.rapid_api_key.get_secret_value() if config.rapid_api_key else "",
        "theirstackApiKey": config.theirstack_api_key.get_secret_value()
        if config.theirstack_api_key
        else "",
    }
    return {name: value.strip() for name, value in values.items() if value.strip()}


def fingerprint(value: str, organization: str) -> str:
    salt = f"{organization}/jobsearch/stack-separation".encode()
    return hashlib.scrypt(value.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_LENGTH).hex()


def fingerprints(values: Mapping[str, str], organization: str) -> dict[str, str]:
    """Each value's fingerprint, by its key's full name (jobsearch:rapidApiKey)."""
    return {
        KEYS_BY_NAME[name].full_name: fingerprint(value, organization)
        for name, value in sorted(values.items())
    }


def export(values: Mapping[str, str], organization: str) -> dict[str, object]:
    """The `separation` output: never secret, and it reveals none of the values."""
    return {
        "scheme": SCHEME,
        "organization": organization,
        "fingerprints": fingerprints(values, organization),
    }


def shared_with(config: StackConfig, source: str, exported: object) -> list[Problem]:
    """What this stack shares with the source stack whose `separation` output is `exported`."""
    if (
        not isinstance(exported, Mapping)
        or exported.get("scheme") != SCHEME
        or not isinstance(exported.get("organization"), str)
        or not isinstance(exported.get("fingerprints"), Mapping)
    ):
        raise ConfigError(
            f"stack {source} exports no {OUTPUT} output of this program's kind "
            f"(got {exported!r}), so {config.stack} cannot check that it shares no database "
            f"or API key with it: deploy it first with `pulumi up -s {source}`"
        )
    theirs = exported["fingerprints"]
    ours = fingerprints(separated_values(config), exported["organization"])
    problems = []
    for name, what in _WHAT.items():
        full_name = KEYS_BY_NAME[name].full_name
        if full_name in ours and ours[full_name] == theirs.get(full_name):
            remedy = _REMEDY[name].format(stack=config.stack)
            problems.append(
                Problem(
                    KEYS_BY_NAME[name],
                    f"{what} {source}'s: {config.stack} and {source} must never share "
                    f"one; {remedy}",
                )
            )
    return problems


async def refuse_shared(config: StackConfig, reference: pulumi.StackReference, source: str) -> None:
    """Raise ConfigError, before any resource, if this stack shares anything with `source`."""
    details = await reference.get_output_details(OUTPUT)
    exported = details.value if details.value is not None else details.secret_value
    problems = shared_with(config, source, exported)
    if problems:
        raise ConfigError(format_problems(config.stack, problems))
