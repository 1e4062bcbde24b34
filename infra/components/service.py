"""The service on its host: infra/topology.py as swarm services, through pulumi-docker.

Nothing here describes a service. `infra.swarm.engine_spec` is the one
translation of a topology ServiceSpec (the local run sends it to the engine as
it is); `service_spec_args` below is only a schema adapter from that engine
spec to pulumi-docker's `Service` inputs, which tests/infra/test_swarm_spec.py
proves lossless, property by property, except for the one gap it lists.

What the component creates, against the manager's engine (over SSH):
- a host script that puts the engine in swarm mode if it is not, and creates
  the named volumes, each owned by the user of the service that mounts it;
- the overlay network;
- one Docker secret per secret value, and one config per config file. Both are
  immutable in a swarm, so they carry no fixed name: Pulumi names them, and a
  changed value is a new object (replaced create-before-delete). The services
  move to it in a rolling update, and the old object is deleted after that;
- the swarm services, in order: the datastores, the API (after the migrations),
  then the proxy. Each `pulumi up` waits until the engine has converged
  (`converge_config`); the engine itself runs the rollout, health-gated, and
  rolls back on failure. Caddy finds the replicas through the swarm's DNS, so
  nothing is reloaded at a rollout.
"""

from __future__ import annotations

import base64
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_docker as docker

from infra.components.host import Host, RegistryLogin
from infra.swarm import NANOSECONDS, ObjectRef, engine_spec
from infra.topology import (
    DATASTORE_ROLES,
    LOGICAL_NAME_LABEL,
    Role,
    ServiceSpec,
    Topology,
    base_labels,
)

COMPONENT_TYPE = "jobsearch:platform:Service"
# Engine spec properties pulumi-docker 5.2's Service cannot express, and why.
# service_spec_args drops exactly these; everything else maps one to one.
UNSUPPORTED = {
    ("TaskTemplate", "Resources", "Limits", "Pids"): (
        "pulumi-docker 5.2's Service has no pids limit (ServiceTaskSpecResourcesLimitsArgs "
        "has memory_bytes and nano_cpus only); the stacks' tasks run without one"
    ),
    ("TaskTemplate", "ContainerSpec", "Ulimits"): (
        "pulumi-docker 5.2's Service has no ulimits; on a stack's hosts the daemon's "
        "default-ulimits give every container the same nofile limit"
    ),
}
# How often `pulumi up` asks the engine whether a service has converged.
CONVERGE_POLL_SECONDS = 5
# Headroom over the engine's own worst case before `pulumi up` gives up waiting.
CONVERGE_MARGIN_SECONDS = 60


# --- the schema adapter: engine ServiceSpec -> docker.Service inputs ---------------


class _Keys:
    """One object of the engine spec, read key by key: a key left unread is an error,
    so a property swarm.py adds cannot be silently lost on the way to Pulumi."""

    def __init__(self, where: str, value: Mapping[str, Any]) -> None:
        self.where = where
        self._left = dict(value)

    def take(self, key: str) -> Any:
        if key not in self._left:
            raise ValueError(f"{self.where} has no {key}")
        return self._left.pop(key)

    def optional(self, key: str) -> Any:
        return self._left.pop(key, None)

    def drop(self, key: str) -> None:
        path = (*self.where.split("."), key)
        if path not in UNSUPPORTED:
            raise ValueError(f"{self.where}.{key} is not a known gap of pulumi-docker")
        self._left.pop(key, None)

    def done(self) -> None:
        if self._left:
            raise ValueError(f"{self.where}: no pulumi-docker mapping for {sorted(self._left)}")


def duration(nanoseconds: int) -> str:
    """An engine duration (nanoseconds) as the provider's duration string."""
    if nanoseconds % NANOSECONDS == 0:
        return f"{nanoseconds // NANOSECONDS}s"
    if nanoseconds % 1_000_000 == 0:
        return f"{nanoseconds // 1_000_000}ms"
    raise ValueError(f"{nanoseconds} ns is not a whole number of milliseconds")


def _labels(labels: Mapping[str, str]) -> list[tuple[str, str]]:
    return sorted(labels.items())


def _env(entries: Sequence[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for entry in entries:
        name, separator, value = entry.partition("=")
        if not separator or name in env:
            raise ValueError(f"Env entry {entry!r} is not a unique NAME=value")
        env[name] = value
    return env


def _healthcheck(value: Mapping[str, Any]) -> docker.ServiceTaskSpecContainerSpecHealthcheckArgs:
    check = _Keys("TaskTemplate.ContainerSpec.Healthcheck", value)
    args = docker.ServiceTaskSpecContainerSpecHealthcheckArgs(
        tests=list(check.take("Test")),
        interval=duration(check.take("Interval")),
        timeout=duration(check.take("Timeout")),
        retries=check.take("Retries"),
        start_period=duration(check.take("StartPeriod")),
    )
    check.done()
    return args


def _mount(value: Mapping[str, Any]) -> docker.ServiceTaskSpecContainerSpecMountArgs:
    mount = _Keys("TaskTemplate.ContainerSpec.Mounts[]", value)
    tmpfs = mount.optional("TmpfsOptions")
    tmpfs_args = None
    if tmpfs is not None:
        options = _Keys("TaskTemplate.ContainerSpec.Mounts[].TmpfsOptions", tmpfs)
        tmpfs_args = docker.ServiceTaskSpecContainerSpecMountTmpfsOptionsArgs(
            size_bytes=options.take("SizeBytes"), mode=options.take("Mode")
        )
        options.done()
    args = docker.ServiceTaskSpecContainerSpecMountArgs(
        type=mount.take("Type"),
        target=mount.take("Target"),
        source=mount.optional("Source"),
        read_only=mount.take("ReadOnly"),
        tmpfs_options=tmpfs_args,
    )
    mount.done()
    return args


def _file(value: Mapping[str, Any], where: str) -> tuple[_Keys, dict[str, Any]]:
    reference = _Keys(where, value)
    file = _Keys(f"{where}.File", reference.take("File"))
    fields = {
        "file_name": file.take("Name"),
        "file_uid": file.take("UID"),
        "file_gid": file.take("GID"),
        "file_mode": file.take("Mode"),
    }
    file.done()
    return reference, fields


def _secret(value: Mapping[str, Any]) -> docker.ServiceTaskSpecContainerSpecSecretArgs:
    reference, fields = _file(value, "TaskTemplate.ContainerSpec.Secrets[]")
    args = docker.ServiceTaskSpecContainerSpecSecretArgs(
        secret_id=reference.take("SecretID"), secret_name=reference.take("SecretName"), **fields
    )
    reference.done()
    return args


def _config(value: Mapping[str, Any]) -> docker.ServiceTaskSpecContainerSpecConfigArgs:
    reference, fields = _file(value, "TaskTemplate.ContainerSpec.Configs[]")
    args = docker.ServiceTaskSpecContainerSpecConfigArgs(
        config_id=reference.take("ConfigID"), config_name=reference.take("ConfigName"), **fields
    )
    reference.done()
    return args


def _container(value: Mapping[str, Any]) -> docker.ServiceTaskSpecContainerSpecArgs:
    spec = _Keys("TaskTemplate.ContainerSpec", value)
    command = spec.optional("Command")
    args = docker.ServiceTaskSpecContainerSpecArgs(
        image=spec.take("Image"),
        commands=list(command) if command is not None else None,
        env=_env(spec.take("Env")),
        user=spec.take("User"),
        labels=[
            docker.ServiceTaskSpecContainerSpecLabelArgs(label=label, value=text)
            for label, text in _labels(spec.take("Labels"))
        ],
        healthcheck=_healthcheck(spec.take("Healthcheck")),
        read_only=spec.take("ReadOnly"),
        mounts=[_mount(mount) for mount in spec.take("Mounts")],
        stop_grace_period=duration(spec.take("StopGracePeriod")),
        cap_drops=list(spec.take("CapabilityDrop")),
        cap_adds=list(spec.take("CapabilityAdd")),
        secrets=[_secret(secret) for secret in spec.take("Secrets")],
        configs=[_config(config) for config in spec.take("Configs")],
    )
    spec.drop("Ulimits")
    spec.done()
    return args


def _resources(value: Mapping[str, Any]) -> docker.ServiceTaskSpecResourcesArgs:
    resources = _Keys("TaskTemplate.Resources", value)
    limits = _Keys("TaskTemplate.Resources.Limits", resources.take("Limits"))
    args = docker.ServiceTaskSpecResourcesArgs(
        limits=docker.ServiceTaskSpecResourcesLimitsArgs(
            memory_bytes=limits.take("MemoryBytes"), nano_cpus=limits.take("NanoCPUs")
        )
    )
    limits.drop("Pids")
    limits.done()
    resources.done()
    return args


def _restart(value: Mapping[str, Any]) -> docker.ServiceTaskSpecRestartPolicyArgs:
    policy = _Keys("TaskTemplate.RestartPolicy", value)
    args = docker.ServiceTaskSpecRestartPolicyArgs(
        condition=policy.take("Condition"),
        delay=duration(policy.take("Delay")),
        max_attempts=policy.take("MaxAttempts"),
    )
    policy.done()
    return args


def _placement(value: Mapping[str, Any]) -> docker.ServiceTaskSpecPlacementArgs:
    placement = _Keys("TaskTemplate.Placement", value)
    prefs = []
    for preference in placement.take("Preferences"):
        outer = _Keys("TaskTemplate.Placement.Preferences[]", preference)
        spread = _Keys("TaskTemplate.Placement.Preferences[].Spread", outer.take("Spread"))
        # The provider's own syntax (`docker service create --placement-pref`).
        prefs.append(f"spread={spread.take('SpreadDescriptor')}")
        spread.done()
        outer.done()
    args = docker.ServiceTaskSpecPlacementArgs(
        constraints=list(placement.take("Constraints")),
        prefs=prefs,
        max_replicas=placement.optional("MaxReplicas"),
    )
    placement.done()
    return args


def _network(value: Mapping[str, Any]) -> docker.ServiceTaskSpecNetworksAdvancedArgs:
    attachment = _Keys("TaskTemplate.Networks[]", value)
    # `id`, not the deprecated `name`: the engine reports the network's ID back.
    args = docker.ServiceTaskSpecNetworksAdvancedArgs(
        id=attachment.take("Target"), aliases=list(attachment.take("Aliases"))
    )
    attachment.done()
    return args


def _log_driver(value: Mapping[str, Any]) -> docker.ServiceTaskSpecLogDriverArgs:
    driver = _Keys("TaskTemplate.LogDriver", value)
    args = docker.ServiceTaskSpecLogDriverArgs(
        name=driver.take("Name"), options=dict(driver.take("Options"))
    )
    driver.done()
    return args


def _task_spec(value: Mapping[str, Any]) -> docker.ServiceTaskSpecArgs:
    task = _Keys("TaskTemplate", value)
    args = docker.ServiceTaskSpecArgs(
        container_spec=_container(task.take("ContainerSpec")),
        resources=_resources(task.take("Resources")),
        restart_policy=_restart(task.take("RestartPolicy")),
        placement=_placement(task.take("Placement")),
        networks_advanceds=[_network(network) for network in task.take("Networks")],
        log_driver=_log_driver(task.take("LogDriver")),
    )
    task.done()
    return args


def _policy(value: Mapping[str, Any], where: str) -> dict[str, Any]:
    policy = _Keys(where, value)
    args = {
        "parallelism": policy.take("Parallelism"),
        "delay": duration(policy.take("Delay")),
        "failure_action": policy.take("FailureAction"),
        "monitor": duration(policy.take("Monitor")),
        # A string in the provider's schema.
        "max_failure_ratio": str(float(policy.take("MaxFailureRatio"))),
        "order": policy.take("Order"),
    }
    policy.done()
    return args


def _mode(value: Mapping[str, Any]) -> docker.ServiceModeArgs:
    mode = _Keys("Mode", value)
    replicated = _Keys("Mode.Replicated", mode.take("Replicated"))
    args = docker.ServiceModeArgs(
        replicated=docker.ServiceModeReplicatedArgs(replicas=replicated.take("Replicas"))
    )
    replicated.done()
    mode.done()
    return args


def _port(value: Mapping[str, Any]) -> docker.ServiceEndpointSpecPortArgs:
    port = _Keys("EndpointSpec.Ports[]", value)
    args = docker.ServiceEndpointSpecPortArgs(
        protocol=port.take("Protocol"),
        target_port=port.take("TargetPort"),
        published_port=port.take("PublishedPort"),
        publish_mode=port.take("PublishMode"),
    )
    port.done()
    return args


def _endpoint(value: Mapping[str, Any]) -> docker.ServiceEndpointSpecArgs:
    endpoint = _Keys("EndpointSpec", value)
    args = docker.ServiceEndpointSpecArgs(
        mode=endpoint.take("Mode"), ports=[_port(port) for port in endpoint.take("Ports")]
    )
    endpoint.done()
    return args


def service_spec_args(spec: Mapping[str, Any]) -> dict[str, Any]:
    """docker.Service keyword arguments for one engine ServiceSpec (infra.swarm.engine_spec).

    Every key is mapped, or dropped only if UNSUPPORTED lists it; any other key
    raises, so the stacks never deploy less than the engine spec says.
    """
    top = _Keys("ServiceSpec", spec)
    args = {
        "name": top.take("Name"),
        "labels": [
            docker.ServiceLabelArgs(label=label, value=text)
            for label, text in _labels(top.take("Labels"))
        ],
        "task_spec": _task_spec(top.take("TaskTemplate")),
        "mode": _mode(top.take("Mode")),
        "update_config": docker.ServiceUpdateConfigArgs(
            **_policy(top.take("UpdateConfig"), "UpdateConfig")
        ),
        "rollback_config": docker.ServiceRollbackConfigArgs(
            **_policy(top.take("RollbackConfig"), "RollbackConfig")
        ),
        "endpoint_spec": _endpoint(top.take("EndpointSpec")),
    }
    top.done()
    return args


# --- the host's side: swarm mode and volumes -----------------------------------------


def converge_timeout_seconds(service: ServiceSpec) -> int:
    """How long `pulumi up` waits for a service: each task in turn may take the health
    check's worst case to turn healthy, then is watched for the update's monitor
    window (and, failing, rolled back within the same bounds)."""
    per_task = service.healthcheck.worst_case_seconds + service.update.monitor_seconds
    return service.replicas * per_task + service.stop_grace_seconds + CONVERGE_MARGIN_SECONDS


def prepare_swarm_script(topology: Topology, advertise_address: str) -> str:
    """Swarm mode on the engine, and each named volume owned by the user of the service
    that mounts it.

    A new volume is root's, and no service runs as root: a throwaway container of
    the service's own image chowns the volume's root (run as root inside it, so
    the deploy user needs no sudo: access to Docker is all it has and needs).
    Safe to run again: an active swarm and existing volumes are kept.
    """
    labels = " ".join(
        f"--label {shlex.quote(f'{key}={value}')}"
        for key, value in sorted(base_labels(topology.spec.environment).items())
    )
    lines = [
        "set -eu",
        "if [ \"$(docker info --format '{{.Swarm.LocalNodeState}}')\" != active ]; then",
        f"  docker swarm init --advertise-addr {shlex.quote(advertise_address)} >/dev/null",
        "fi",
    ]
    for service in topology.services:
        for mount in service.mounts:
            if mount.kind != "volume":
                continue
            volume = shlex.quote(mount.source)
            lines += [
                f"docker volume inspect {volume} >/dev/null 2>&1"
                f" || docker volume create {labels} {volume} >/dev/null",
                "docker run --rm --user 0:0 --network none --entrypoint chown"
                f" -v {volume}:/volume {shlex.quote(service.image)}"
                f" {shlex.quote(service.user)} /volume",
            ]
    return "\n".join(lines) + "\n"


def _base64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


# --- the component -----------------------------------------------------------------


@dataclass(frozen=True)
class ServiceArgs:
    topology: Topology
    host: Host
    # Values of the secrets the services mount (infra.topology.SERVICE_SECRET_SETTINGS),
    # by setting name; a name with no value is not mounted (that source is off).
    secrets: Mapping[str, pulumi.Input[str]]
    # What must be done before the API's tasks start (the database migrations).
    prerequisites: Sequence[pulumi.Resource] = ()
    # The service image's registry login: sent with each service so that every
    # node pulls the digest itself (`docker service create --with-registry-auth`).
    registry: RegistryLogin | None = None


class Service(pulumi.ComponentResource):
    """The topology's swarm services, their network, secrets and configs, on one swarm."""

    network: docker.Network
    swarm: pulumi.CustomResource
    secrets: dict[str, docker.Secret]
    configs: dict[str, docker.ServiceConfig]
    services: dict[Role, docker.Service]
    api: docker.Service

    def __init__(
        self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        topology = args.topology
        unknown = sorted(set(args.secrets) - set(topology.secret_names))
        if unknown:
            raise ValueError(f"no service of the topology mounts the secrets {unknown}")

        self.swarm = args.host.run(
            f"{name}-swarm",
            script=args.host.advertise_address.apply(
                lambda address: prepare_swarm_script(topology, address)
            ),
            # Every node has joined: the engine places tasks as they are created and
            # does not move them when a node joins later.
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.host.members),
        )
        on_swarm = pulumi.ResourceOptions(
            parent=self, provider=args.host.docker, depends_on=[self.swarm]
        )
        labels = base_labels(topology.spec.environment)

        network = topology.network
        self.network = docker.Network(
            f"{name}-network",
            name=network.name,
            driver="overlay",
            attachable=network.attachable,
            ipam_configs=[docker.NetworkIpamConfigArgs(subnet=network.subnet)],
            labels=[
                docker.NetworkLabelArgs(label=label, value=value)
                for label, value in sorted(labels.items())
            ],
            opts=on_swarm,
        )

        def object_labels(logical: str) -> list[tuple[str, str]]:
            return sorted({**labels, LOGICAL_NAME_LABEL: logical}.items())

        # No `name`: Pulumi auto-names each one, so a new value is a new object,
        # created before the old one is deleted.
        def encoded_secret(value: pulumi.Input[str]) -> pulumi.Output[str]:
            encoded: pulumi.Output[str] = pulumi.Output.from_input(value).apply(_base64)
            marked: pulumi.Output[str] = pulumi.Output.secret(encoded)
            return marked

        self.secrets = {
            logical: docker.Secret(
                f"{name}-secret-{_kebab(logical)}",
                data=encoded_secret(value),
                labels=[
                    docker.SecretLabelArgs(label=label, value=text)
                    for label, text in object_labels(logical)
                ],
                # (pulumi-docker itself keeps `data` a secret output.)
                opts=on_swarm,
            )
            for logical in topology.secret_names
            if (value := args.secrets.get(logical)) is not None
        }
        self.configs = {
            logical: docker.ServiceConfig(
                f"{name}-config-{_kebab(logical)}",
                data=_base64(content),
                labels=[
                    docker.ServiceConfigLabelArgs(label=label, value=text)
                    for label, text in object_labels(logical)
                ],
                opts=on_swarm,
            )
            for logical, content in sorted(topology.config_files.items())
        }
        secret_refs = {k: ObjectRef(id=s.id, name=s.name) for k, s in self.secrets.items()}
        config_refs = {k: ObjectRef(id=c.id, name=c.name) for k, c in self.configs.items()}

        def create(spec: ServiceSpec, after: Sequence[pulumi.Resource]) -> docker.Service:
            engine = engine_spec(spec, network, secret_refs, config_refs)
            for attachment in engine["TaskTemplate"]["Networks"]:
                if attachment["Target"] == network.name:
                    # The created network's ID: the service waits for the network.
                    attachment["Target"] = self.network.id
            return docker.Service(
                f"{name}-{spec.role}",
                **service_spec_args(engine),
                converge_config=docker.ServiceConvergeConfigArgs(
                    delay=f"{CONVERGE_POLL_SECONDS}s",
                    timeout=f"{converge_timeout_seconds(spec)}s",
                ),
                # No `auth`: the provider then sends its own registry login for the
                # image's registry with every create and update (`--with-registry-auth`),
                # and a rotated registry password is an update, never a replacement.
                opts=pulumi.ResourceOptions.merge(
                    on_swarm,
                    pulumi.ResourceOptions(
                        depends_on=[self.swarm, *after],
                        # A fixed name exists once: were a service ever replaced, the old
                        # one must go first.
                        delete_before_replace=True,
                    ),
                ),
            )

        self.services = {}
        datastores = [s for s in topology.services if s.role in DATASTORE_ROLES]
        for spec in datastores:
            self.services[spec.role] = create(spec, [])
        stores = [self.services[s.role] for s in datastores]
        self.api = create(topology.api, [*args.prerequisites, *stores])
        self.services["api"] = self.api
        self.services["proxy"] = create(topology.proxy, [self.api])
        missing = {s.role for s in topology.services} - set(self.services)
        if missing:
            raise ValueError(f"the component does not create the {sorted(missing)} services")

        self.register_outputs(
            {
                "network": self.network.name,
                "services": {role: service.name for role, service in self.services.items()},
            }
        )


def _kebab(logical: str) -> str:
    return logical.lower().replace("_", "-")
