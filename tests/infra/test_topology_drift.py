"""Local runs and the stacks run the same containers: both come from infra/topology.py.

For every container of several topologies, the Pulumi translation
(`infra.components.service.container_args`) and the local runner's
(`infra.local.translate.container_create_kwargs`) are brought to one
canonical form, property by property, and must be equal. A property one
translator sets and the other does not fails the test until it is mapped
here, or listed below with the reason it cannot be.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pytest

from infra.components.service import container_args, wait_timeout
from infra.local.translate import container_create_kwargs
from infra.topology import ContainerSpec, Images, TopologySpec, describe

NETWORK = "jobsearch-drift-net"
SECRETS = {
    "DATABASE_URL": "postgresql://jobsearch_app:pw@db:5432/postgres",
    "RAPID_API_KEY": "rapid-key",
    "THEIRSTACK_API_KEY": "theirstack-token",
    "POSTGRES_PASSWORD": "local-password",
}
# Properties only one side can express, and why.
PULUMI_ONLY = {
    # How Pulumi creates and replaces containers, not what the container is.
    "wait": "creation waits for Docker's healthy state",
    "wait_timeout": "how long that wait may take",
    "must_run": "the provider restarts a stopped container",
    "destroy_grace_seconds": "deletion stops the container first (equal to stop_timeout)",
    "network_mode": "the network is the container's own (equal to the network joined)",
}
LOCAL_ONLY = {
    "detach": "docker-py returns instead of attaching",
    # pulumi-docker 5.x's Container has no pids limit: a known gap of the stacks.
    "pids_limit": "not expressible with pulumi-docker 5.x",
}


def topologies() -> dict[str, list[ContainerSpec]]:
    service = "registry.example.com/acme/jobsearch-api@sha256:" + "ab" * 32
    specs = {
        "laptop": TopologySpec(
            environment="local",
            images=Images(service=service),
            local_datastores=True,
            http_port=8080,
            bind_address="127.0.0.1",
            settings={"LOG_LEVEL": "DEBUG", "CORS_ORIGINS": "http://localhost:3000"},
        ),
        "prod": TopologySpec(
            environment="prod",
            images=Images(service=service, proxy="caddy:2@sha256:" + "cd" * 32),
            replicas=3,
            domain="api.example.com",
            acme_email="ops@example.com",
            settings={"LOG_LEVEL": "INFO", "CORS_ORIGINS": "https://app.example.com"},
        ),
    }
    found = {}
    for name, spec in specs.items():
        topology = describe(spec)
        found[name] = [topology.proxy, *topology.datastores, *topology.replicas("0123abcd4567")]
    return found


CASES = [(name, spec) for name, specs in topologies().items() for spec in specs]
# Ids without the environment's name in them: `-k "not local"` must not skip these.
IDS = [f"{name}-{spec.name.split('-', 2)[2]}" for name, spec in CASES]


def _seconds(duration: str) -> int:
    assert duration.endswith("s"), duration
    return int(duration[:-1])


def from_pulumi(args: Mapping[str, Any], envs: list[str]) -> dict[str, Any]:
    args = dict(args)
    check = args.pop("healthcheck")
    capabilities = args.pop("capabilities")
    [network] = args.pop("networks_advanced")
    canonical = {
        "name": args.pop("name"),
        "image": args.pop("image"),
        "command": tuple(args.pop("command")) if "command" in args else None,
        "env": dict(entry.partition("=")[::2] for entry in envs),
        "user": args.pop("user"),
        "labels": {label.label: label.value for label in args.pop("labels")},
        "healthcheck": (
            tuple(check.tests),
            _seconds(check.interval),
            _seconds(check.timeout),
            check.retries,
            _seconds(check.start_period),
        ),
        "memory_mb": args.pop("memory"),
        "cpus": float(args.pop("cpus")),
        "read_only": args.pop("read_only"),
        "cap_drop": tuple(capabilities.drops),
        "cap_add": tuple(capabilities.adds),
        "security_opt": tuple(args.pop("security_opts")),
        "restart": (args.pop("restart"), args.pop("max_retry_count", None)),
        "log": (args.pop("log_driver"), dict(args.pop("log_opts"))),
        "tmpfs": dict(args.pop("tmpfs")),
        "ports": {
            f"{port.internal}/{port.protocol}": (port.ip, port.external)
            for port in args.pop("ports")
        },
        "mounts": {
            mount.source: (mount.target, mount.read_only, mount.type)
            for mount in args.pop("mounts")
        },
        "stop_timeout": args.pop("stop_timeout"),
        "network": (network.name, tuple(network.aliases), network.ipv4_address),
    }
    args.pop("envs")
    assert args["network_mode"] == network.name
    assert args["destroy_grace_seconds"] == canonical["stop_timeout"]
    leftover = set(args) - set(PULUMI_ONLY)
    assert not leftover, f"container_args sets {leftover}: map it to the local side here"
    return canonical


def from_local(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    kwargs = dict(kwargs)
    check = kwargs.pop("healthcheck")
    nanos = 1_000_000_000
    restart = kwargs.pop("restart_policy")
    log = kwargs.pop("log_config")
    [(network, endpoint)] = kwargs.pop("networking_config").items()
    assert kwargs.pop("network") == network
    command = kwargs.pop("command")
    canonical = {
        "name": kwargs.pop("name"),
        "image": kwargs.pop("image"),
        "command": tuple(command) if command is not None else None,
        "env": dict(kwargs.pop("environment")),
        "user": kwargs.pop("user"),
        "labels": dict(kwargs.pop("labels")),
        "healthcheck": (
            tuple(check["test"]),
            check["interval"] // nanos,
            check["timeout"] // nanos,
            check["retries"],
            check["start_period"] // nanos,
        ),
        "memory_mb": int(kwargs.pop("mem_limit").removesuffix("m")),
        "cpus": kwargs.pop("nano_cpus") / nanos,
        "read_only": kwargs.pop("read_only"),
        "cap_drop": tuple(kwargs.pop("cap_drop")),
        "cap_add": tuple(kwargs.pop("cap_add")),
        "security_opt": tuple(kwargs.pop("security_opt")),
        "restart": (restart["Name"], restart.get("MaximumRetryCount")),
        "log": (log["type"], dict(log["config"])),
        "tmpfs": dict(kwargs.pop("tmpfs")),
        "ports": dict(kwargs.pop("ports")),
        "mounts": {
            source: (
                volume["bind"],
                volume["mode"] == "ro",
                "bind" if source.startswith("/") else "volume",
            )
            for source, volume in kwargs.pop("volumes").items()
        },
        "stop_timeout": kwargs.pop("stop_timeout"),
        "network": (
            network,
            tuple(endpoint.get("Aliases") or ()),
            (endpoint.get("IPAMConfig") or {}).get("IPv4Address"),
        ),
    }
    leftover = set(kwargs) - set(LOCAL_ONLY)
    assert not leftover, f"container_create_kwargs sets {leftover}: map it to the Pulumi side here"
    return canonical


@pytest.fixture(scope="module", autouse=True)
def pulumi_runtime() -> None:
    class NoResources(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
            raise AssertionError("container_args creates no resource")

        def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], None]:
            raise AssertionError("container_args calls nothing")

    pulumi.runtime.set_mocks(NoResources(), preview=False)


@pytest.mark.parametrize(("topology", "spec"), CASES, ids=IDS)
@pulumi.runtime.test  # type: ignore[untyped-decorator]
def test_both_translators_build_the_same_container(topology: str, spec: ContainerSpec) -> Any:
    pulumi_side = container_args(spec, SECRETS, network=NETWORK)
    local_side = from_local(container_create_kwargs(spec, SECRETS, network=NETWORK))
    assert local_side["name"] == spec.name, topology

    def compare(envs: list[str]) -> None:
        canonical = from_pulumi(pulumi_side, envs)
        for key in sorted(set(canonical) | set(local_side)):
            assert canonical.get(key) == local_side.get(key), f"{spec.name}: {key} differs"

    return pulumi.Output.from_input(pulumi_side["envs"]).apply(compare)


@pytest.mark.parametrize(("topology", "spec"), CASES, ids=IDS)
def test_what_only_one_side_can_say_still_comes_from_the_spec(
    topology: str, spec: ContainerSpec
) -> None:
    pulumi_side = container_args(spec, SECRETS, network=NETWORK)
    local_side = container_create_kwargs(spec, SECRETS, network=NETWORK)
    assert pulumi_side["wait"] is True
    assert pulumi_side["wait_timeout"] == wait_timeout(spec.healthcheck)
    assert pulumi_side["must_run"] is True
    assert local_side["pids_limit"] == spec.limits.pids
    assert "pids_limit" not in pulumi_side, "pulumi-docker gained a pids limit: map it"


@pytest.mark.parametrize(("topology", "spec"), CASES, ids=IDS)
@pulumi.runtime.test  # type: ignore[untyped-decorator]
def test_secrets_are_one_secret_environment_on_the_pulumi_side(
    topology: str, spec: ContainerSpec
) -> Any:
    envs = container_args(spec, SECRETS, network=NETWORK)["envs"]
    named = [name for name in spec.secret_env if name in SECRETS]
    if not named:
        assert isinstance(envs, list), f"{spec.name} has no secret: its env stays plain"
        return None
    assert isinstance(envs, pulumi.Output)

    async def check() -> None:
        assert await envs.is_secret(), f"{spec.name}: its environment holds secrets"
        plain = await envs.future()
        assert plain is not None
        for name in named:
            assert f"{name}={SECRETS[name]}" in plain

    return check()


def test_the_public_url_names_a_non_default_https_port() -> None:
    images = Images(service="svc@sha256:" + "a" * 64)
    spec = TopologySpec(environment="prod", images=images, domain="api.example.com")
    assert describe(spec).public_url == "https://api.example.com"
    moved = TopologySpec(
        environment="prod", images=images, domain="api.example.com", https_port=8443
    )
    assert describe(moved).public_url == "https://api.example.com:8443"
