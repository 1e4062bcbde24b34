"""A stack's configuration as the Pulumi CLI hands it to the program.

The CLI merges Pulumi.yaml's declared defaults with Pulumi.<stack>.yaml,
refuses a stack that lacks a key declared without a default, and passes
every value to the program as a string (lists as JSON). This does the same
for the committed stack files plus the values a test adds: the ones each
organization sets once, and fake secrets.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra import separation

ROOT = Path(__file__).resolve().parents[3]
PROJECT = "jobsearch"

# A digest nobody will confuse with a real one (64 hex digits).
FAKE_DIGEST = "sha256:" + "ab" * 32


def digest_ref(repository: str, fill: str) -> str:
    return f"{repository}@sha256:{fill * (64 // len(fill))}"


# Secrets: distinctive, so a test can find any plain-text copy of them.
FAKE_SECRETS: dict[str, str] = {
    "databaseUrl": "postgresql://postgres.prjref:FakeDbAdminPw-7c1e@aws-0-eu-central-1.pooler.supabase.com:5432/postgres",
    "appDbPassword": "FakeAppDbPassword-3f9a-abcdefghijkl",
    "rapidApiKey": "fake-rapid-api-key-9d2b",
    "theirstackApiKey": "fake-theirstack-token-41ce",
    "sentryDsn": "https://fakesentrykey5e0a@o1.ingest.sentry.io/42",
    "hcloudToken": "fake-hcloud-token-77aa",
    "cloudflareApiToken": "fake-cloudflare-token-c0de",
    "checklyApiKey": "fake-checkly-key-b00b",
    "alertWebhookUrl": "https://hooks.example.com/services/fake-webhook-token-f00d",
    "sentryAuthToken": "fake-sentry-auth-token-d1ce",
    "vercelApiToken": "fake-vercel-token-cafe",
    "registryPassword": "fake-registry-token-beef",
}

# What an organization sets once per stack (not committed: it is theirs).
OPERATOR_VALUES: dict[str, dict[str, Any]] = {
    "staging": {
        "imageRef": digest_ref("registry.example.com/acme/jobsearch-api", "1a"),
        "proxyImage": digest_ref("caddy", "2b"),
        "redisImage": digest_ref("redis", "3c"),
        "sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeDeployKeyForTestsOnly deploy",
        "domain": "staging-api.example.com",
        "acmeEmail": "ops@example.com",
        "cloudflareZoneId": "zone-0123456789",
        "checklyAccountId": "acct-0123",
        "alertEmails": ["oncall@example.com"],
        "frontendOrigins": ["https://staging.app.example.com"],
    },
    "prod": {
        "sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeDeployKeyForTestsOnly deploy",
        "domain": "api.example.com",
        "acmeEmail": "ops@example.com",
        "cloudflareZoneId": "zone-0123456789",
        "checklyAccountId": "acct-0123",
        "alertEmails": ["oncall@example.com", "lead@example.com"],
        "sentryOrganization": "acme",
        "sentryProject": "jobsearch-api",
        "sentryTeamId": "17",
        "frontendOrigins": ["https://app.example.com", "https://www.app.example.com"],
        "frontendLink": True,
        "vercelProjectId": "prj_fake0123",
    },
}

STACK_SECRETS: dict[str, tuple[str, ...]] = {
    "staging": (
        "databaseUrl", "appDbPassword", "rapidApiKey", "theirstackApiKey", "hcloudToken",
        "cloudflareApiToken", "checklyApiKey", "alertWebhookUrl",
    ),
    "prod": (
        "databaseUrl", "appDbPassword", "rapidApiKey", "theirstackApiKey", "sentryDsn",
        "hcloudToken", "cloudflareApiToken", "checklyApiKey", "alertWebhookUrl",
        "sentryAuthToken", "vercelApiToken",
    ),
}  # fmt: skip

# Staging's own database and API keys, as its `separation` output fingerprints them:
# never prod's (FAKE_SECRETS), as infra/separation.py requires.
STAGING_SEPARATE_VALUES: dict[str, str] = {
    "databaseUrl": "supabase:stagingprojectref0",
    "rapidApiKey": "fake-staging-rapid-api-key-2a7f",
    "theirstackApiKey": "fake-staging-theirstack-token-8b1d",
}

# What the staging stack exports, as prod's StackReference reads it.
STAGING_EXPORTS: dict[str, Any] = {
    "image_ref": digest_ref("registry.example.com/acme/jobsearch-api", "4d"),
    "proxy_image_ref": digest_ref("caddy", "5e"),
    "redis_image_ref": digest_ref("redis", "6f"),
    "url": "https://staging-api.example.com",
    "separation": separation.export(STAGING_SEPARATE_VALUES, "organization"),
}


class MissingConfiguration(Exception):
    """What the CLI says before it runs the program."""


@dataclass
class StackInput:
    """The configuration of one run of the program."""

    stack: str
    values: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    # prod's StackReference to staging; None: the stack reference fails.
    staging_exports: Mapping[str, Any] | None = None

    def with_values(self, **values: Any) -> StackInput:
        return StackInput(
            self.stack, {**self.values, **values}, dict(self.secrets), self.staging_exports
        )

    def without(self, *names: str) -> StackInput:
        return StackInput(
            self.stack,
            {k: v for k, v in self.values.items() if k not in names},
            {k: v for k, v in self.secrets.items() if k not in names},
            self.staging_exports,
        )


def project_schema() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    schema: dict[str, Any] = document["config"]
    return schema


def committed_values(stack: str) -> dict[str, Any]:
    path = ROOT / f"Pulumi.{stack}.yaml"
    if not path.exists():
        return {}
    document = yaml.safe_load(path.read_text()) or {}
    values = {}
    for key, value in (document.get("config") or {}).items():
        namespace, _, name = key.partition(":")
        assert namespace == PROJECT, f"{path.name}: {key} is not in the {PROJECT} namespace"
        values[name] = value
    return values


def committed_stack(stack: str) -> StackInput:
    """The committed stack file, the organization's values and fake secrets."""
    values = {**committed_values(stack), **OPERATOR_VALUES.get(stack, {})}
    secrets = {name: FAKE_SECRETS[name] for name in STACK_SECRETS.get(stack, ())}
    exports = STAGING_EXPORTS if stack == "prod" else None
    return StackInput(stack, values, secrets, exports)


def _as_config_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def _check_type(name: str, kind: str, value: Any) -> None:
    expected = {"string": str, "integer": int, "boolean": bool, "array": list}[kind]
    if kind == "integer" and isinstance(value, bool):
        raise MissingConfiguration(f"configuration key '{name}' must be of type 'integer'")
    if not isinstance(value, expected):
        raise MissingConfiguration(f"configuration key '{name}' must be of type '{kind}'")


def resolve(run: StackInput) -> tuple[dict[str, str], list[str]]:
    """(config for the program, secret keys), as the CLI would pass them."""
    schema = project_schema()
    values = dict(run.values)
    values.update(run.secrets)
    missing = [n for n, d in schema.items() if "default" not in d and n not in values]
    if missing:
        raise MissingConfiguration(
            f"Stack '{run.stack}' is missing configuration values {', '.join(sorted(missing))}"
        )
    for name, declaration in schema.items():
        if declaration.get("secret") and name in values and name not in run.secrets:
            raise MissingConfiguration(
                f"Stack '{run.stack}' with configuration key '{name}' must be encrypted "
                "as it's secret"
            )
    config: dict[str, str] = {}
    for name, declaration in schema.items():
        if name in values:
            if name not in run.secrets:
                _check_type(name, declaration["type"], values[name])
            value = values[name]
        else:
            value = declaration["default"]
        config[f"{PROJECT}:{name}"] = _as_config_string(value)
    for name, value in values.items():
        if name not in schema:
            config[f"{PROJECT}:{name}"] = _as_config_string(value)
    return config, [f"{PROJECT}:{name}" for name in run.secrets]


DOCS = ROOT / "docs" / "pulumi.md"
DEV_MARKER = "<!-- dev-stack -->"
# What the shell substitutions and placeholders in the documented commands stand for.
DEV_FAKES: dict[str, str] = {
    "imageRef": "sha256:" + "12" * 32,
    "databaseUrl": "postgresql://postgres:FakeDevDbPw-0a0a@db.example.net:5432/postgres",
    "appDbPassword": "FakeDevAppPassword-5b5b-abcdefghij",
    "rapidApiKey": "fake-dev-rapid-key-6c6c",
}


def documented_dev_commands() -> list[list[str]]:
    """The `pulumi config set` commands of the dev-stack block in docs/pulumi.md."""
    text = DOCS.read_text()
    block = text.split(DEV_MARKER, 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    return [
        shlex.split(line.strip())
        for line in block.splitlines()
        if line.strip().startswith("pulumi config set")
    ]


def dev_stack() -> StackInput:
    """The dev stack exactly as docs/pulumi.md tells a newcomer to configure it."""
    values: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for words in documented_dev_commands():
        arguments = words[3:]
        assert arguments[-2:] == ["-s", "dev"], f"{words}: every command names the dev stack"
        arguments = arguments[:-2]
        secret = "--secret" in arguments
        path = "--path" in arguments
        kind = arguments[arguments.index("--type") + 1] if "--type" in arguments else "string"
        positional = [a for a in arguments if not a.startswith("--") and a not in ("int", "bool")]
        key, raw = positional
        namespace, _, name = key.partition(":")
        assert namespace == PROJECT, key
        if path:
            name = name.partition("[")[0]
        value: Any = DEV_FAKES[name] if ("$(" in raw or raw.startswith("<")) else raw
        if kind == "int":
            value = int(value)
        elif kind == "bool":
            value = value == "true"
        if secret:
            secrets[name] = value
        elif path:
            values.setdefault(name, []).append(value)
        else:
            values[name] = value
    return StackInput("dev", values, secrets, None)
