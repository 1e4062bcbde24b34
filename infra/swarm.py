"""The one translation: a topology ServiceSpec as the Docker Engine's service spec.

`engine_spec` returns the JSON the engine's `POST /services/create` takes
(API 1.41, the oldest engine the platform supports). The local run sends it
as it is; the stacks give it to pulumi-docker through `infra.components.
service_spec_args`, a schema adapter that tests/infra/test_swarm_spec.py
proves lossless, property by property.

Secrets and configs are named by reference: the caller has created them (they
are immutable, versioned objects) and passes each one's id and name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from infra.topology import FileMount, HealthCheck, NetworkSpec, RolloutPolicy, ServiceSpec

NANOSECONDS = 1_000_000_000
MIB = 1024 * 1024
# The lowest engine API that has every field used here (Debian's 20.10 engine).
API_VERSION = "1.41"


@dataclass(frozen=True)
class ObjectRef:
    """A created secret or config: the engine's id and its versioned name.
    Values are plain strings locally and Pulumi outputs in the stacks."""

    id: Any
    name: Any


def _health(check: HealthCheck) -> dict[str, Any]:
    return {
        "Test": ["CMD", *check.command],
        "Interval": check.interval_seconds * NANOSECONDS,
        "Timeout": check.timeout_seconds * NANOSECONDS,
        "Retries": check.retries,
        "StartPeriod": check.start_period_seconds * NANOSECONDS,
    }


def _policy(policy: RolloutPolicy) -> dict[str, Any]:
    return {
        "Parallelism": policy.parallelism,
        "Delay": policy.delay_seconds * NANOSECONDS,
        "FailureAction": policy.failure_action,
        "Monitor": policy.monitor_seconds * NANOSECONDS,
        "MaxFailureRatio": policy.max_failure_ratio,
        "Order": policy.order,
    }


def _file(mount: FileMount, ref: ObjectRef, id_key: str, name_key: str) -> dict[str, Any]:
    uid, gid = mount.owner.split(":")
    return {
        "File": {"Name": mount.target, "UID": uid, "GID": gid, "Mode": mount.mode},
        id_key: ref.id,
        name_key: ref.name,
    }


def _mounts(service: ServiceSpec) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = []
    for mount in service.mounts:
        if mount.kind == "volume":
            mounts.append(
                {
                    "Type": "volume",
                    "Source": mount.source,
                    "Target": mount.target,
                    "ReadOnly": mount.read_only,
                }
            )
        else:
            mounts.append(
                {
                    "Type": "tmpfs",
                    "Target": mount.target,
                    "ReadOnly": mount.read_only,
                    "TmpfsOptions": {"SizeBytes": mount.size_mb * MIB, "Mode": mount.mode},
                }
            )
    return mounts


def _placement(service: ServiceSpec) -> dict[str, Any]:
    placement: dict[str, Any] = {
        "Constraints": list(service.placement_constraints),
        "Preferences": [
            {"Spread": {"SpreadDescriptor": descriptor}}
            for descriptor in service.placement_preferences
        ],
    }
    # Only when capped: the engine reads a missing MaxReplicas as no cap, and the
    # local runner's specs stay as they were for one node.
    if service.placement_max_replicas:
        placement["MaxReplicas"] = service.placement_max_replicas
    return placement


def engine_spec(
    service: ServiceSpec,
    network: NetworkSpec,
    secrets: Mapping[str, ObjectRef],
    configs: Mapping[str, ObjectRef],
) -> dict[str, Any]:
    """The engine's ServiceSpec for one service.

    A secret the service mounts but `secrets` lacks is left out: the service
    treats a missing key as that source being off.
    """
    container: dict[str, Any] = {
        "Image": service.image,
        "Env": [f"{name}={value}" for name, value in sorted(service.env.items())],
        "User": service.user,
        "Labels": dict(service.labels),
        "Healthcheck": _health(service.healthcheck),
        "ReadOnly": service.read_only,
        "Mounts": _mounts(service),
        "StopGracePeriod": service.stop_grace_seconds * NANOSECONDS,
        "CapabilityDrop": list(service.cap_drop),
        "Ulimits": [
            {"Name": "nofile", "Soft": service.limits.nofile, "Hard": service.limits.nofile}
        ],
        "CapabilityAdd": list(service.cap_add),
        "Secrets": [
            _file(mount, secrets[mount.name], "SecretID", "SecretName")
            for mount in service.secrets
            if mount.name in secrets
        ],
        "Configs": [
            _file(mount, configs[mount.name], "ConfigID", "ConfigName") for mount in service.configs
        ],
    }
    if service.command is not None:
        container["Command"] = list(service.command)
    spec: dict[str, Any] = {
        "Name": service.name,
        "Labels": dict(service.labels),
        "TaskTemplate": {
            "ContainerSpec": container,
            "Resources": {
                "Limits": {
                    "MemoryBytes": service.limits.memory_mb * MIB,
                    "NanoCPUs": int(service.limits.cpus * NANOSECONDS),
                    "Pids": service.limits.pids,
                }
            },
            "RestartPolicy": {"Condition": "any", "Delay": 5 * NANOSECONDS, "MaxAttempts": 0},
            "Placement": _placement(service),
            "Networks": [{"Target": network.name, "Aliases": list(service.aliases)}],
            "LogDriver": {"Name": service.logging.driver, "Options": service.logging.options()},
        },
        "Mode": {"Replicated": {"Replicas": service.replicas}},
        "UpdateConfig": _policy(service.update),
        "RollbackConfig": _policy(service.rollback),
        "EndpointSpec": {
            "Mode": "dnsrr",
            "Ports": [
                {
                    "Protocol": port.protocol,
                    "TargetPort": port.target,
                    "PublishedPort": port.published,
                    "PublishMode": "host",
                }
                for port in service.ports
            ],
        },
    }
    return spec
