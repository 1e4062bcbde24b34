"""One ContainerSpec of infra/topology.py as docker SDK arguments.

`container_create_kwargs` is a pure function of the spec (and the secrets it
names): tests/infra/test_topology_drift.py compares it with the Pulumi
translation, so that local runs and the stacks cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import docker
import docker.models.containers
from docker.models.containers import Container
from docker.types import EndpointConfig

from infra.topology import ContainerSpec

_NANOSECONDS = 1_000_000_000
# The lowest API version that has every field used here (the 20.10 engine speaks 1.41).
API_VERSION = "1.41"


def container_create_kwargs(
    spec: ContainerSpec, secrets: Mapping[str, str], *, network: str | None = None
) -> dict[str, Any]:
    """Arguments for `client.containers.create(**kwargs)`, plus `stop_timeout`
    (see `create_container`, which applies it).

    Secrets named by `spec.secret_env` and present in `secrets` join the
    environment; the others are left out (the service treats them as off).
    With `network`, the container joins it with the spec's aliases and address.
    """
    environment = dict(spec.env)
    environment.update({name: secrets[name] for name in spec.secret_env if name in secrets})
    restart_policy: dict[str, Any] = {"Name": spec.restart}
    if spec.restart == "on-failure":
        restart_policy["MaximumRetryCount"] = 5
    health = spec.healthcheck
    kwargs: dict[str, Any] = {
        "name": spec.name,
        "image": spec.image,
        "command": list(spec.command) if spec.command is not None else None,
        "environment": environment,
        "user": spec.user,
        "labels": dict(spec.labels),
        "healthcheck": {
            "test": ["CMD", *health.command],
            "interval": health.interval_seconds * _NANOSECONDS,
            "timeout": health.timeout_seconds * _NANOSECONDS,
            "retries": health.retries,
            "start_period": health.start_period_seconds * _NANOSECONDS,
        },
        "mem_limit": f"{spec.limits.memory_mb}m",
        "nano_cpus": int(spec.limits.cpus * _NANOSECONDS),
        "pids_limit": spec.limits.pids,
        "read_only": spec.read_only,
        "cap_drop": list(spec.cap_drop),
        "cap_add": list(spec.cap_add),
        "security_opt": list(spec.security_opt),
        "restart_policy": restart_policy,
        "log_config": {"type": spec.logging.driver, "config": spec.logging.options()},
        "tmpfs": dict(spec.tmpfs),
        "ports": {
            f"{port.container_port}/{port.protocol}": (port.host_ip, port.host_port)
            for port in spec.ports
        },
        "volumes": {
            mount.source: {"bind": mount.target, "mode": "ro" if mount.read_only else "rw"}
            for mount in spec.mounts
        },
        "stop_timeout": spec.stop_timeout_seconds,
        "detach": True,
    }
    if network is not None:
        kwargs["network"] = network
        kwargs["networking_config"] = {
            network: EndpointConfig(
                API_VERSION, aliases=list(spec.aliases), ipv4_address=spec.ipv4_address
            )
        }
    return kwargs


def create_container(client: docker.DockerClient, kwargs: Mapping[str, Any]) -> Container:
    """Create (not start) a container from `container_create_kwargs`.

    docker-py's high-level `create` has no stop timeout, which is what lets
    in-flight requests finish on `docker stop`; the low-level call has it.
    """
    arguments = dict(kwargs)
    stop_timeout = arguments.pop("stop_timeout")
    arguments["version"] = client.api.api_version
    # The same conversion `containers.create` does, then the low-level call.
    to_low_level = cast(Any, docker.models.containers)._create_container_args
    low_level = to_low_level(arguments)
    created = client.api.create_container(**low_level, stop_timeout=stop_timeout)
    return client.containers.get(created["Id"])
