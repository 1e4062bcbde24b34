"""The guardrails prod must pass, as plain functions over resource properties.

A resource check takes what a policy sees of one resource (its type, its
properties by their Pulumi names, and its additional secret outputs) and
returns the violations; a stack check takes every resource. The workload
checks read a Docker container (`docker.Container`) and a Swarm service
(`docker.Service`, whose container is under `taskSpec.containerSpec`) alike,
through one `Workload` view of either. Nothing here
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

from infra.config.standins import stand_in_settings
from infra.image_refs import is_pinned
from infra.topology import NODE_MARKER, PROXY_HTTPS_PORT, ROLE_LABEL

CONTAINER = "docker:index/container:Container"
SERVICE = "docker:index/service:Service"
WORKLOADS = (CONTAINER, SERVICE)
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
VERCEL_VARIABLE = "vercel:index/projectEnvironmentVariable:ProjectEnvironmentVariable"
COMMANDS = ("command:remote:Command", "command:local:Command")
DNS_RECORD = "cloudflare:index/record:Record"
DYNAMIC_PREFIX = "pulumi-python:dynamic"

# Setting names that hold credentials, by convention.
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|DSN|DATABASE_URL", re.IGNORECASE)
_RESTART_POLICIES = ("always", "unless-stopped", "on-failure")
_SERVICE_RESTART_CONDITIONS = ("any", "on-failure")
_MIB = 1024 * 1024
_NANO = 1_000_000_000
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


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


@dataclass(frozen=True)
class Workload:
    """What the checks need of a container or a Swarm service, in one shape."""

    kind: str  # "container" or "service", for the messages
    name: str
    image: str
    user: str
    read_only: Any
    health_tests: list[str]
    restart: Any
    restarts: bool
    log_driver: Any
    log_options: Mapping[str, Any]
    env: dict[str, str]
    # The property an additionalSecretOutputs entry must name to keep env encrypted.
    env_property: str
    cap_drops: list[str]
    memory_bytes: float
    nano_cpus: float
    labels: dict[str, str]
    internal_ports: list[Any]
    replicas: int

    @property
    def title(self) -> str:
        return f"{self.kind} {self.name!r}"


def _container_workload(props: Props) -> Workload:
    restart = props.get("restart")
    return Workload(
        kind="container",
        name=str(props.get("name")),
        image=str(props.get("image") or ""),
        user=str(props.get("user") or "").strip(),
        read_only=props.get("readOnly"),
        health_tests=list((props.get("healthcheck") or {}).get("tests") or []),
        restart=restart,
        restarts=restart in _RESTART_POLICIES,
        log_driver=props.get("logDriver"),
        log_options=props.get("logOpts") or {},
        env=environment(props),
        env_property="envs",
        cap_drops=[str(c) for c in (props.get("capabilities") or {}).get("drops") or []],
        memory_bytes=_number(props.get("memory")) * _MIB,
        nano_cpus=_number(props.get("cpus")) * _NANO,
        labels=_labels(props),
        internal_ports=[port.get("internal") for port in props.get("ports") or []],
        replicas=1,
    )


def _service_workload(props: Props) -> Workload:
    task = props.get("taskSpec") or {}
    spec = task.get("containerSpec") or {}
    limits = (task.get("resources") or {}).get("limits") or {}
    restart = (task.get("restartPolicy") or {}).get("condition")
    log = task.get("logDriver") or {}
    replicated = (props.get("mode") or {}).get("replicated") or {}
    ports = (props.get("endpointSpec") or {}).get("ports") or []
    return Workload(
        kind="service",
        name=str(props.get("name")),
        image=str(spec.get("image") or ""),
        user=str(spec.get("user") or "").strip(),
        read_only=spec.get("readOnly"),
        health_tests=list((spec.get("healthcheck") or {}).get("tests") or []),
        restart=restart,
        restarts=restart in _SERVICE_RESTART_CONDITIONS,
        log_driver=log.get("name"),
        log_options=log.get("options") or {},
        env={str(k): str(v) for k, v in (spec.get("env") or {}).items()},
        env_property="taskSpec",
        cap_drops=[str(c) for c in spec.get("capDrops") or []],
        memory_bytes=_number(limits.get("memoryBytes")),
        nano_cpus=_number(limits.get("nanoCpus")),
        labels=_labels(props),
        internal_ports=[port.get("targetPort") for port in ports],
        replicas=int(_number(replicated.get("replicas", 1))),
    )


def workload(resource_type: str, props: Props) -> Workload | None:
    """A container's or a Swarm service's view for the checks; None for any other resource."""
    if resource_type == CONTAINER:
        return _container_workload(props)
    if resource_type == SERVICE:
        return _service_workload(props)
    return None


def images_by_digest(resource_type: str, props: Props, _secret_outputs: Sequence[str]) -> list[str]:
    if resource_type == REMOTE_IMAGE:
        name = str(props.get("name") or "")
        if not is_pinned(name):
            return [f"image {name!r} is pulled by tag; pull it by digest (name@sha256:...)"]
    found = workload(resource_type, props)
    if found is not None:
        image = found.image
        # A service's image may carry its tag as well: name:tag@sha256:...
        if not is_pinned(image, bare_digest=True):
            return [f"{found.title} runs {image!r}, not an image pinned by digest"]
    return []


def cors_without_wildcard(
    resource_type: str, props: Props, _secret_outputs: Sequence[str]
) -> list[str]:
    found = workload(resource_type, props)
    if found is None:
        return []
    origins = found.env.get("CORS_ORIGINS", "")
    if "*" in origins:
        return [f"{found.title} allows CORS from {origins!r}; list the origins"]
    return []


def no_stand_ins(resource_type: str, props: Props, _secret_outputs: Sequence[str]) -> list[str]:
    """SAMPLE_SOURCES and the *_BASE_URL settings are for local stand-ins, never a stack."""
    found = workload(resource_type, props)
    if found is None:
        return []
    return [
        f"{found.title} sets {setting}: stand-ins are for local and test runs only"
        for setting in stand_in_settings(found.env)
    ]


def non_root(resource_type: str, props: Props, _secret_outputs: Sequence[str]) -> list[str]:
    found = workload(resource_type, props)
    if found is None:
        return []
    uid = found.user.partition(":")[0]
    if not found.user or uid in ("0", "root"):
        return [f"{found.title} runs as root; set a non-root user"]
    return []


def read_only(resource_type: str, props: Props, _secret_outputs: Sequence[str]) -> list[str]:
    found = workload(resource_type, props)
    if found is not None and found.read_only is not True:
        return [f"{found.title} has a writable root filesystem; set read_only"]
    return []


def health_checked(resource_type: str, props: Props, _secret_outputs: Sequence[str]) -> list[str]:
    found = workload(resource_type, props)
    if found is None:
        return []
    if not found.health_tests or found.health_tests[0] == "NONE":
        return [f"{found.title} has no health check"]
    return []


def restarts(resource_type: str, props: Props, _secret_outputs: Sequence[str]) -> list[str]:
    found = workload(resource_type, props)
    if found is None or found.restarts:
        return []
    allowed = _RESTART_POLICIES if found.kind == "container" else _SERVICE_RESTART_CONDITIONS
    return [f"{found.title} has restart policy {found.restart!r}; use one of {', '.join(allowed)}"]


def rotates_logs(resource_type: str, props: Props, _secret_outputs: Sequence[str]) -> list[str]:
    found = workload(resource_type, props)
    if found is None:
        return []
    options = found.log_options
    if (
        found.log_driver not in _ROTATING_LOG_DRIVERS
        or not options.get("max-size")
        or not options.get("max-file")
    ):
        return [
            f"{found.title} logs with {found.log_driver!r} {dict(options)!r}; "
            "use json-file or local with max-size and max-file"
        ]
    return []


def drops_capabilities(
    resource_type: str, props: Props, _secret_outputs: Sequence[str]
) -> list[str]:
    found = workload(resource_type, props)
    if found is None:
        return []
    if "ALL" not in {cap.upper() for cap in found.cap_drops}:
        return [f"{found.title} keeps Linux capabilities; drop ALL (add back only what it needs)"]
    return []


def resource_limits(resource_type: str, props: Props, _secret_outputs: Sequence[str]) -> list[str]:
    found = workload(resource_type, props)
    if found is None:
        return []
    problems = []
    if found.memory_bytes <= 0:
        problems.append(f"{found.title} has no memory limit; set one")
    if found.nano_cpus <= 0:
        problems.append(f"{found.title} has no CPU limit; set one")
    return problems


def secret_settings_are_secrets(
    resource_type: str, props: Props, secret_outputs: Sequence[str]
) -> list[str]:
    """Credential-looking settings must be stored as Pulumi secrets.

    A policy cannot see whether an input was a secret, but it sees
    `additionalSecretOutputs`, which keeps the property encrypted in state
    whatever the provider reads back; the mocked-graph tests check that the
    inputs themselves are secrets.
    """
    found = workload(resource_type, props)
    if found is not None:
        names = sorted(name for name in found.env if SECRET_NAME.search(name))
        if names and found.env_property not in secret_outputs:
            where = "envs" if found.kind == "container" else "its env"
            return [
                f"{found.title} has {', '.join(names)} in {where}, which is not a secret output"
                + ("" if found.kind == "container" else f" ({found.env_property})")
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


def _workloads(resources: Sequence[StackResource], role: str) -> list[Workload]:
    found = (workload(r.resource_type, r.props) for r in resources)
    return [w for w in found if w is not None and w.labels.get(ROLE_LABEL) == role]


def at_least_two_replicas(resources: Sequence[StackResource]) -> list[str]:
    replicas = sum(w.replicas for w in _workloads(resources, "api"))
    if replicas < 2:
        return [f"the stack runs {replicas} service replica(s); run at least 2"]
    return []


def swarm_nodes(resources: Sequence[StackResource]) -> set[str]:
    """The nodes a stack runs on, by the marker on the command that inits or joins each
    (infra/components/host.py); a stack without one runs on one engine."""
    return {
        line.removeprefix(NODE_MARKER).strip()
        for resource in resources
        if resource.resource_type in COMMANDS
        for line in str(resource.props.get("create") or "").splitlines()
        if line.startswith(NODE_MARKER)
    }


def at_least_two_nodes(resources: Sequence[StackResource]) -> list[str]:
    count = max(len(swarm_nodes(resources)), 1)
    if count < 2:
        return [
            f"the stack runs on {count} node; run at least 2, so that losing one machine "
            "keeps the service up (pulumi config set --type int jobsearch:nodes 3)"
        ]
    return []


def https_on(resources: Sequence[StackResource]) -> list[str]:
    problems = []
    proxies = _workloads(resources, "proxy")
    listening = [proxy for proxy in proxies if PROXY_HTTPS_PORT in proxy.internal_ports]
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
    ResourceGuardrail(
        "no-stand-ins", "The service talks to the real APIs, never stand-ins.", no_stand_ins
    ),
    ResourceGuardrail("containers-non-root", "Containers run as a non-root user.", non_root),
    ResourceGuardrail(
        "containers-read-only", "Containers have a read-only root filesystem.", read_only
    ),
    ResourceGuardrail("containers-health-check", "Containers have a health check.", health_checked),
    ResourceGuardrail("containers-restart-policy", "Containers restart when they stop.", restarts),
    ResourceGuardrail("containers-log-rotation", "Container logs rotate.", rotates_logs),
    ResourceGuardrail(
        "containers-drop-capabilities",
        "Containers drop every Linux capability (cap_drop ALL).",
        drops_capabilities,
    ),
    ResourceGuardrail(
        "containers-resource-limits", "Containers have memory and CPU limits.", resource_limits
    ),
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
    StackGuardrail(
        "at-least-two-nodes", "The stack runs on two machines or more.", at_least_two_nodes
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
