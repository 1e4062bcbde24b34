"""The guardrails prod must pass, as plain functions over resource properties.

A resource check takes what a policy sees of one resource (its type, its
properties by their Pulumi names, and its additional secret outputs) and
returns the violations; a stack check takes every resource. Nothing here
needs the Pulumi engine, so each is unit-tested passing and failing
(tests/infra/policy/) and run over the mocked stacks' graphs
(tests/infra/pulumi/). `build_policies()` wires them for the policy pack in
infra/policy/__main__.py, which runs them as mandatory.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from infra.topology import PROXY_HTTPS_PORT

CONTAINER = "docker:index/container:Container"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
VERCEL_VARIABLE = "vercel:index/projectEnvironmentVariable:ProjectEnvironmentVariable"
COMMANDS = ("command:remote:Command", "command:local:Command")
DNS_RECORD = "cloudflare:index/record:Record"
DYNAMIC_PREFIX = "pulumi-python:dynamic"
ROLE_LABEL = "org.jobsearch.role"

# Setting names that hold credentials, by convention.
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|DSN|DATABASE_URL", re.IGNORECASE)
_DIGEST_REF = re.compile(r"[^@\s]+@sha256:[0-9a-f]{64}")
_IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}")
_RESTART_POLICIES = ("always", "unless-stopped", "on-failure")
_ROTATING_LOG_DRIVERS = ("json-file", "local")

Props = Mapping[str, Any]
ResourceCheck = Callable[[str, Props, Sequence[str]], list[str]]


@dataclass(frozen=True)
class StackResource:
    """What a stack check sees of one resource."""

    resource_type: str
    name: str
    props: Props


StackCheck = Callable[[Sequence[StackResource]], list[str]]


def environment(props: Props) -> dict[str, str]:
    """A container's `envs` (["NAME=value", ...]) as a mapping."""
    pairs = (str(entry).partition("=") for entry in props.get("envs") or [])
    return {name: value for name, _, value in pairs}


def _labels(props: Props) -> dict[str, str]:
    return {str(item.get("label")): str(item.get("value")) for item in props.get("labels") or []}


def images_by_digest(resource_type: str, props: Props, _secret_outputs: Sequence[str]) -> list[str]:
    if resource_type == REMOTE_IMAGE:
        name = str(props.get("name") or "")
        if not _DIGEST_REF.fullmatch(name):
            return [f"image {name!r} is pulled by tag; pull it by digest (name@sha256:...)"]
    if resource_type == CONTAINER:
        image = str(props.get("image") or "")
        if not (_DIGEST_REF.fullmatch(image) or _IMAGE_ID.fullmatch(image)):
            return [
                f"container {props.get('name')!r} runs {image!r}, not an image pinned by digest"
            ]
    return []


def cors_without_wildcard(
    resource_type: str, props: Props, _secret_outputs: Sequence[str]
) -> list[str]:
    if resource_type != CONTAINER:
        return []
    origins = environment(props).get("CORS_ORIGINS", "")
    if "*" in origins:
        return [f"container {props.get('name')!r} allows CORS from {origins!r}; list the origins"]
    return []


def non_root(resource_type: str, props: Props, _secret_outputs: Sequence[str]) -> list[str]:
    if resource_type != CONTAINER:
        return []
    user = str(props.get("user") or "").strip()
    uid = user.partition(":")[0]
    if not user or uid in ("0", "root"):
        return [f"container {props.get('name')!r} runs as root; set a non-root user"]
    return []


def read_only(resource_type: str, props: Props, _secret_outputs: Sequence[str]) -> list[str]:
    if resource_type == CONTAINER and props.get("readOnly") is not True:
        return [f"container {props.get('name')!r} has a writable root filesystem; set read_only"]
    return []


def health_checked(resource_type: str, props: Props, _secret_outputs: Sequence[str]) -> list[str]:
    if resource_type != CONTAINER:
        return []
    tests = list((props.get("healthcheck") or {}).get("tests") or [])
    if not tests or tests[0] == "NONE":
        return [f"container {props.get('name')!r} has no health check"]
    return []


def restarts(resource_type: str, props: Props, _secret_outputs: Sequence[str]) -> list[str]:
    if resource_type != CONTAINER:
        return []
    policy = props.get("restart")
    if policy not in _RESTART_POLICIES:
        return [
            f"container {props.get('name')!r} has restart policy {policy!r}; "
            f"use one of {', '.join(_RESTART_POLICIES)}"
        ]
    return []


def rotates_logs(resource_type: str, props: Props, _secret_outputs: Sequence[str]) -> list[str]:
    if resource_type != CONTAINER:
        return []
    driver = props.get("logDriver")
    options = props.get("logOpts") or {}
    if (
        driver not in _ROTATING_LOG_DRIVERS
        or not options.get("max-size")
        or not options.get("max-file")
    ):
        return [
            f"container {props.get('name')!r} logs with {driver!r} {dict(options)!r}; "
            "use json-file or local with max-size and max-file"
        ]
    return []


def secret_settings_are_secrets(
    resource_type: str, props: Props, secret_outputs: Sequence[str]
) -> list[str]:
    """Credential-looking settings must be stored as Pulumi secrets.

    A policy cannot see whether an input was a secret, but it sees
    `additionalSecretOutputs`, which keeps the property encrypted in state
    whatever the provider reads back; the mocked-graph tests check that the
    inputs themselves are secrets.
    """
    if resource_type == CONTAINER:
        names = sorted(name for name in environment(props) if SECRET_NAME.search(name))
        if names and "envs" not in secret_outputs:
            return [
                f"container {props.get('name')!r} has {', '.join(names)} in envs, which is not "
                "a secret output"
            ]
    if resource_type in COMMANDS:
        names = sorted(name for name in props.get("environment") or {} if SECRET_NAME.search(name))
        if names and "environment" not in secret_outputs:
            return [f"command has {', '.join(names)} in its environment, not a secret output"]
    if resource_type == VERCEL_VARIABLE:
        key = str(props.get("key") or "")
        if SECRET_NAME.search(key) and props.get("sensitive") is not True:
            return [f"Vercel variable {key} looks like a credential but is not sensitive"]
    if resource_type.startswith(DYNAMIC_PREFIX):
        names = sorted(
            name
            for name in props
            if not name.startswith("__") and SECRET_NAME.search(name) and name not in secret_outputs
        )
        if names:
            return [f"{', '.join(names)} of {resource_type} are not secret outputs"]
    return []


def _containers(resources: Sequence[StackResource], role: str) -> list[StackResource]:
    return [
        r
        for r in resources
        if r.resource_type == CONTAINER and _labels(r.props).get(ROLE_LABEL) == role
    ]


def at_least_two_replicas(resources: Sequence[StackResource]) -> list[str]:
    replicas = _containers(resources, "api")
    if len(replicas) < 2:
        return [f"the stack runs {len(replicas)} service replica(s); run at least 2"]
    return []


def https_on(resources: Sequence[StackResource]) -> list[str]:
    problems = []
    proxies = _containers(resources, "proxy")
    listening = [
        proxy
        for proxy in proxies
        if any(port.get("internal") == PROXY_HTTPS_PORT for port in proxy.props.get("ports") or [])
    ]
    if not listening:
        problems.append("no proxy publishes its HTTPS port: set a domain")
    for command in resources:
        if command.resource_type in COMMANDS and "auto_https off" in str(
            command.props.get("stdin") or ""
        ):
            problems.append(f"{command.name} installs a Caddyfile with automatic HTTPS off")
    if not any(r.resource_type == DNS_RECORD for r in resources):
        problems.append("no DNS record points the domain at the host")
    return problems


@dataclass(frozen=True)
class ResourceGuardrail:
    name: str
    description: str
    check: ResourceCheck


@dataclass(frozen=True)
class StackGuardrail:
    name: str
    description: str
    check: StackCheck


RESOURCE_GUARDRAILS: tuple[ResourceGuardrail, ...] = (
    ResourceGuardrail("images-by-digest", "Images are pulled and run by digest.", images_by_digest),
    ResourceGuardrail("cors-no-wildcard", "CORS lists origins; no `*`.", cors_without_wildcard),
    ResourceGuardrail("containers-non-root", "Containers run as a non-root user.", non_root),
    ResourceGuardrail(
        "containers-read-only", "Containers have a read-only root filesystem.", read_only
    ),
    ResourceGuardrail("containers-health-check", "Containers have a health check.", health_checked),
    ResourceGuardrail("containers-restart-policy", "Containers restart when they stop.", restarts),
    ResourceGuardrail("containers-log-rotation", "Container logs rotate.", rotates_logs),
    ResourceGuardrail(
        "secret-settings-are-secrets",
        "Settings named like credentials are Pulumi secrets.",
        secret_settings_are_secrets,
    ),
)
STACK_GUARDRAILS: tuple[StackGuardrail, ...] = (
    StackGuardrail(
        "at-least-two-replicas", "The service runs two replicas or more.", at_least_two_replicas
    ),
    StackGuardrail("https-on", "The API is served over HTTPS on its domain.", https_on),
)


def _resource_policy(guardrail: ResourceGuardrail) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        secret_outputs = list(args.opts.additional_secret_outputs or [])
        for message in guardrail.check(args.resource_type, args.props, secret_outputs):
            report(message, None)

    return ResourceValidationPolicy(
        name=guardrail.name,
        description=guardrail.description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


def _stack_policy(guardrail: StackGuardrail) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        resources = [StackResource(r.resource_type, r.name, r.props) for r in args.resources]
        for message in guardrail.check(resources):
            report(message, None)

    return StackValidationPolicy(
        name=guardrail.name,
        description=guardrail.description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


def build_policies() -> list[Policy]:
    """Every guardrail as a mandatory pulumi-policy policy."""
    policies: list[Policy] = [_resource_policy(g) for g in RESOURCE_GUARDRAILS]
    policies.extend(_stack_policy(g) for g in STACK_GUARDRAILS)
    return policies
