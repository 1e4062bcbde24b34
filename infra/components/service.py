"""The service on its host: infra/topology.py turned into pulumi-docker resources.

Nothing here describes a container: `container_args` translates a topology
ContainerSpec property by property, and tests/infra/test_topology_drift.py
checks it against the local runner's translation of the same spec.

A rollout drops no request:
1. the new replicas (new generation, new names and aliases) are created next
   to the old ones, and each creation waits until Docker reports it healthy
   (`wait=True`); Pulumi replaces create-before-delete by default;
2. then the proxy's Caddyfile is rewritten to list only the new aliases,
   validated, and Caddy reloaded gracefully (a command that depends on the
   new replicas, so it runs only once they are healthy);
3. Pulumi deletes the replaced replicas last, after everything that depends
   on them was updated; each gets SIGTERM and `stop_timeout` seconds to
   finish its in-flight requests (`destroy_grace_seconds`).
The proxy and Redis keep fixed names and host ports, so they are replaced
delete-before-create: a change to them (a new Caddy or Redis image) is a
short interruption, which the README says.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_docker as docker

from infra.components.host import Host
from infra.config import image_generation
from infra.topology import PROXY_UID, ContainerSpec, HealthCheck, Topology, base_labels

COMPONENT_TYPE = "jobsearch:platform:Service"
# Headroom over the health check's own worst case before a creation is failed.
_WAIT_MARGIN_SECONDS = 60
CADDYFILE_MOUNT = "/etc/caddy"
CADDY_DATA_MOUNT = "/data"


def _seconds(value: int) -> str:
    return f"{value}s"


def wait_timeout(check: HealthCheck) -> int:
    """How long a creation may wait for `healthy`: the check's own worst case plus margin."""
    return check.worst_case_seconds + _WAIT_MARGIN_SECONDS


def _environment(
    spec: ContainerSpec, secrets: Mapping[str, pulumi.Input[str]]
) -> list[str] | pulumi.Output[list[str]]:
    leaked = sorted(set(spec.env) & set(spec.secret_env))
    if leaked:
        raise ValueError(f"{spec.name}: {', '.join(leaked)} must come from secrets, not env")
    plain = [f"{name}={value}" for name, value in sorted(spec.env.items())]
    names = [name for name in spec.secret_env if name in secrets]
    if not names:
        return plain

    def with_secrets(values: list[str]) -> list[str]:
        return plain + [f"{name}={value}" for name, value in zip(names, values, strict=True)]

    combined: pulumi.Output[list[str]] = pulumi.Output.all(*(secrets[n] for n in names)).apply(
        with_secrets
    )
    # Secret as a whole: the engine stores it encrypted and previews show [secret].
    secret: pulumi.Output[list[str]] = pulumi.Output.secret(combined)
    return secret


def container_args(
    spec: ContainerSpec,
    secrets: Mapping[str, pulumi.Input[str]],
    *,
    network: pulumi.Input[str] | None = None,
) -> dict[str, Any]:
    """The docker.Container keyword arguments for one ContainerSpec.

    `secrets` holds the values of the spec's `secret_env` names; a name without
    a value is left unset (the service treats unset as off). Any secret makes
    the whole `envs` a Pulumi secret.
    """
    check = spec.healthcheck
    args: dict[str, Any] = {
        "name": spec.name,
        "image": spec.image,
        "envs": _environment(spec, secrets),
        "user": spec.user,
        "healthcheck": docker.ContainerHealthcheckArgs(
            tests=["CMD", *check.command],
            interval=_seconds(check.interval_seconds),
            timeout=_seconds(check.timeout_seconds),
            retries=check.retries,
            start_period=_seconds(check.start_period_seconds),
        ),
        "memory": spec.limits.memory_mb,
        "cpus": f"{spec.limits.cpus:g}",
        "read_only": spec.read_only,
        "tmpfs": dict(spec.tmpfs),
        "mounts": [
            docker.ContainerMountArgs(
                target=mount.target,
                type=mount.kind,
                source=mount.source,
                read_only=mount.read_only,
            )
            for mount in spec.mounts
        ],
        "ports": [
            docker.ContainerPortArgs(
                internal=port.container_port,
                external=port.host_port,
                ip=port.host_ip,
                protocol=port.protocol,
            )
            for port in spec.ports
        ],
        "capabilities": docker.ContainerCapabilitiesArgs(
            drops=list(spec.cap_drop), adds=list(spec.cap_add)
        ),
        "security_opts": list(spec.security_opt),
        "restart": spec.restart,
        "log_driver": spec.logging.driver,
        "log_opts": spec.logging.options(),
        "labels": [
            docker.ContainerLabelArgs(label=label, value=value)
            for label, value in sorted(spec.labels.items())
        ],
        "stop_timeout": spec.stop_timeout_seconds,
        # Deleting stops the container first (SIGTERM, then this long), so a
        # replaced replica finishes its in-flight requests.
        "destroy_grace_seconds": spec.stop_timeout_seconds,
        "wait": True,
        "wait_timeout": wait_timeout(check),
        "must_run": True,
    }
    if spec.command is not None:
        args["command"] = list(spec.command)
    if network is not None:
        args["network_mode"] = network
        args["networks_advanced"] = [
            docker.ContainerNetworksAdvancedArgs(
                name=network, aliases=list(spec.aliases), ipv4_address=spec.ipv4_address
            )
        ]
    return args


def rollout_generation(topology: Topology, secrets_fingerprint: str) -> str:
    """The name of the replicas' generation: it changes whenever a replica would.

    Eight characters of the image digest, so a rollout's names say which image
    runs, then four of a hash over everything else a replica is made of (its
    settings and a keyed fingerprint of its secrets). A replica can only be
    replaced create-before-delete under a new name, so a changed setting or a
    rotated secret starts a new generation just like a new image does.
    """
    shape = [dataclasses.asdict(spec) for spec in topology.replicas("generation")]
    digest = hashlib.sha256(
        json.dumps([shape, secrets_fingerprint], sort_keys=True, default=str).encode()
    ).hexdigest()
    return image_generation(topology.spec.images.service)[:8] + digest[:4]


def _mount_source(spec: ContainerSpec, target: str) -> str:
    for mount in spec.mounts:
        if mount.target == target:
            return mount.source
    raise ValueError(f"{spec.name} has no mount at {target}")


def prepare_state_script(topology: Topology) -> str:
    """Create the proxy's host directories with the owners its user needs, and a first
    Caddyfile (from stdin) if there is none yet.

    It runs as root inside a throwaway proxy container, so the deploy user needs
    no sudo: access to Docker is all it has and all it needs.
    """
    proxy = topology.proxy
    state = topology.spec.state_dir
    config_dir = _mount_source(proxy, CADDYFILE_MOUNT)
    config_in = shlex.quote("/state/" + _relative(config_dir, state))
    data_in = shlex.quote("/state/" + _relative(_mount_source(proxy, CADDY_DATA_MOUNT), state))
    inside = (
        f"mkdir -p {config_in} {data_in}"
        f' && chown "$1" {config_in} && chmod 0755 {config_in}'
        f" && chown {PROXY_UID} {data_in} && chmod 0700 {data_in}"
    )
    caddyfile = shlex.quote(f"{config_dir}/Caddyfile")
    return "\n".join(
        [
            "set -eu",
            "docker run --rm --user 0:0 --network none --entrypoint /bin/sh"
            f" -v {shlex.quote(state)}:/state {shlex.quote(proxy.image)}"
            f' -c {shlex.quote(inside)} sh "$(id -u):$(id -g)"',
            f"if [ -s {caddyfile} ]; then cat >/dev/null;"
            f" else cat > {caddyfile}.new && mv {caddyfile}.new {caddyfile}; fi",
        ]
    )


def _relative(path: str, root: str) -> str:
    prefix = root.rstrip("/") + "/"
    if not path.startswith(prefix):
        raise ValueError(f"{path} is not under the state directory {root}")
    return path[len(prefix) :]


def reload_proxy_script(topology: Topology) -> str:
    """Install the Caddyfile from stdin and reload Caddy gracefully; keep the old one if
    the new one does not validate or the reload fails."""
    proxy = topology.proxy
    host_file = shlex.quote(f"{_mount_source(proxy, CADDYFILE_MOUNT)}/Caddyfile")
    container = shlex.quote(proxy.name)
    caddy = f"docker exec {container} caddy"
    adapter = "--adapter caddyfile"
    return "\n".join(
        [
            "set -eu",
            f"cat > {host_file}.next",
            f"{caddy} validate --config {CADDYFILE_MOUNT}/Caddyfile.next {adapter}",
            f"cp {host_file} {host_file}.previous",
            f"mv {host_file}.next {host_file}",
            f"if ! {caddy} reload --config {CADDYFILE_MOUNT}/Caddyfile {adapter}; then",
            f"  mv {host_file}.previous {host_file}",
            "  exit 1",
            "fi",
        ]
    )


@dataclass(frozen=True)
class ServiceArgs:
    topology: Topology
    generation: str
    host: Host
    # Values for the replicas' secret settings (infra.topology.SERVICE_SECRET_SETTINGS).
    secrets: Mapping[str, pulumi.Input[str]]
    # What must be done before any replica starts (the database migrations).
    prerequisites: Sequence[pulumi.Resource] = ()
    # Pull images on the host (a dev stack uses images its engine already has).
    pull_images: bool = True


class Service(pulumi.ComponentResource):
    """The proxy, the service replicas of one generation, and Redis, on one network."""

    replicas: list[docker.Container]
    proxy: docker.Container
    network: docker.Network
    proxy_config: pulumi.CustomResource

    def __init__(
        self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        topology = args.topology
        on_host = pulumi.ResourceOptions(parent=self, provider=args.host.docker)
        images = self._images(name, topology, args.pull_images, on_host)

        replica_specs = topology.replicas(args.generation)
        caddyfile = topology.caddyfile(tuple(alias for s in replica_specs for alias in s.aliases))
        state = args.host.run(
            f"{name}-proxy-state",
            script=prepare_state_script(topology),
            stdin=caddyfile,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[images[topology.proxy.image]] if args.pull_images else [],
                # Later Caddyfiles are installed by the reload below, not here.
                ignore_changes=["stdin"],
            ),
        )

        network_spec = topology.network
        self.network = docker.Network(
            f"{name}-network",
            name=network_spec.name,
            driver="bridge",
            internal=network_spec.internal,
            ipam_configs=[
                docker.NetworkIpamConfigArgs(
                    subnet=network_spec.subnet,
                    gateway=network_spec.gateway,
                    # Replicas get addresses from here, never the proxy's fixed one.
                    ip_range=network_spec.dynamic_range,
                )
            ],
            labels=[
                docker.NetworkLabelArgs(label=label, value=value)
                for label, value in sorted(base_labels(topology.spec.environment).items())
            ],
            opts=on_host,
        )

        datastores = [
            self._container(f"{name}-{spec.role}", spec, {}, images, fixed_name=True, opts=on_host)
            for spec in topology.datastores
        ]
        self.replicas = [
            self._container(
                f"{name}-api-{index}",
                spec,
                args.secrets,
                images,
                fixed_name=False,
                opts=pulumi.ResourceOptions.merge(
                    on_host,
                    pulumi.ResourceOptions(depends_on=[*args.prerequisites, *datastores]),
                ),
            )
            for index, spec in enumerate(replica_specs, start=1)
        ]
        self.proxy = self._container(
            f"{name}-proxy",
            topology.proxy,
            {},
            images,
            fixed_name=True,
            opts=pulumi.ResourceOptions.merge(on_host, pulumi.ResourceOptions(depends_on=[state])),
        )
        # Runs once the new replicas are healthy: only then does the proxy switch.
        self.proxy_config = args.host.run(
            f"{name}-proxy-config",
            script=reload_proxy_script(topology),
            stdin=caddyfile,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.proxy, *self.replicas]),
        )
        self.register_outputs(
            {
                "generation": args.generation,
                "replica_names": [spec.name for spec in replica_specs],
                "network": network_spec.name,
            }
        )

    def _images(
        self, name: str, topology: Topology, pull: bool, opts: pulumi.ResourceOptions
    ) -> dict[str, docker.RemoteImage]:
        if not pull:
            return {}
        refs: dict[str, str] = {
            "service": topology.spec.images.service,
            "proxy": topology.proxy.image,
        }
        refs.update({spec.role: spec.image for spec in topology.datastores})
        return {
            ref: docker.RemoteImage(
                f"{name}-image-{role}",
                name=ref,
                # A rollback to the previous image needs no pull.
                keep_locally=True,
                opts=opts,
            )
            for role, ref in refs.items()
        }

    def _container(
        self,
        resource_name: str,
        spec: ContainerSpec,
        secrets: Mapping[str, pulumi.Input[str]],
        images: Mapping[str, docker.RemoteImage],
        *,
        fixed_name: bool,
        opts: pulumi.ResourceOptions,
    ) -> docker.Container:
        kwargs = container_args(spec, secrets, network=self.network.name)
        pulled = images.get(spec.image)
        if pulled is not None:
            # The pulled image's ID: the container runs exactly what was pulled by digest.
            kwargs["image"] = pulled.image_id
        secret_outputs = ["envs"] if any(name in secrets for name in spec.secret_env) else []
        return docker.Container(
            resource_name,
            **kwargs,
            opts=pulumi.ResourceOptions.merge(
                opts,
                pulumi.ResourceOptions(
                    # Keeps envs encrypted in state even as the provider reads it back.
                    additional_secret_outputs=secret_outputs,
                    # A fixed name cannot exist twice, so it cannot be replaced
                    # create-before-delete.
                    delete_before_replace=fixed_name,
                    custom_timeouts=pulumi.CustomTimeouts(
                        create=f"{wait_timeout(spec.healthcheck) + 300}s"
                    ),
                ),
            ),
        )
