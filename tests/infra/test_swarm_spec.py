"""The stacks deploy exactly the engine spec the local run sends: one translation.

`infra.swarm.engine_spec` is the Docker Engine's ServiceSpec, which the local
runner sends to the engine as it is. The stacks give it to pulumi-docker
through `infra.components.service.service_spec_args`. Here, for every service
of several topologies, that adapter's output is converted back to the engine's
shape, independently of the adapter, and must equal `engine_spec(...)`
property by property. A property the adapter drops, adds or changes fails the
test, unless KNOWN_GAPS lists it with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from infra.components.service import UNSUPPORTED, service_spec_args
from infra.swarm import NANOSECONDS, ObjectRef, engine_spec
from infra.topology import (
    DATASTORE_LABEL,
    EDGE_LABEL,
    Images,
    ServiceSpec,
    Topology,
    TopologySpec,
    describe,
)

# What pulumi-docker 5.2's Service cannot carry, and why. The adapter drops
# exactly these (infra.components.service.UNSUPPORTED); nothing else.
KNOWN_GAPS = {
    ("TaskTemplate", "Resources", "Limits", "Pids"): (
        "pulumi-docker 5.2's Service has no pids limit: the stacks' tasks run without one"
    ),
    ("TaskTemplate", "ContainerSpec", "Ulimits"): (
        "pulumi-docker 5.2's Service has no ulimits: the hosts' daemon default applies"
    ),
}
SERVICE_IMAGE = "registry.example.com/acme/jobsearch-api@sha256:" + "ab" * 32


def topologies() -> dict[str, Topology]:
    specs = {
        "laptop": TopologySpec(
            environment="local",
            images=Images(service=SERVICE_IMAGE),
            local_datastores=True,
            http_port=8080,
            settings={"LOG_LEVEL": "DEBUG", "CORS_ORIGINS": "http://localhost:3000"},
        ),
        "suite": TopologySpec(
            environment="test",
            images=Images(service=SERVICE_IMAGE),
            local_datastores=True,
            replicas=1,
            subnet_octet=232,
        ),
        "prod": TopologySpec(
            environment="prod",
            images=Images(service=SERVICE_IMAGE, proxy="caddy:2@sha256:" + "cd" * 32),
            replicas=3,
            domain="api.example.com",
            acme_email="ops@example.com",
            https_port=8443,
            settings={"LOG_LEVEL": "INFO", "CORS_ORIGINS": "https://app.example.com"},
        ),
        # Three nodes, two replicas: at most one per node, Redis and the proxy pinned.
        "cluster": TopologySpec(
            environment="staging",
            images=Images(service=SERVICE_IMAGE, proxy="caddy:2@sha256:" + "cd" * 32),
            replicas=2,
            nodes=3,
            domain="staging-api.example.com",
        ),
    }
    return {name: describe(spec) for name, spec in specs.items()}


def _refs(names: tuple[str, ...], kind: str) -> dict[str, ObjectRef]:
    return {
        name: ObjectRef(id=f"{kind}-id-{index}", name=f"jobsearch-{name.lower()}-{index}")
        for index, name in enumerate(names)
    }


def engine(topology: Topology, service: ServiceSpec) -> dict[str, Any]:
    return engine_spec(
        service,
        topology.network,
        _refs(topology.secret_names, "secret"),
        _refs(tuple(topology.config_files), "config"),
    )


CASES = [
    (name, topology, service)
    for name, topology in topologies().items()
    for service in topology.services
]
# Ids without the environment's name in them: `-k "not local"` must not skip these.
IDS = [f"{name}-{service.role}" for name, _, service in CASES]


# --- pulumi-docker inputs, back to the engine's shape --------------------------------


class Unread:
    """The properties one input object set; each read pops one, and `done` fails on any
    property left, so an input the adapter adds cannot go unnoticed."""

    def __init__(self, where: str, value: Any) -> None:
        self.where = where
        self.left = {k: v for k, v in vars(value).items() if v is not None}

    def take(self, key: str) -> Any:
        assert key in self.left, f"{self.where}.{key} is not set"
        return self.left.pop(key)

    def optional(self, key: str) -> Any:
        return self.left.pop(key, None)

    def done(self) -> None:
        assert not self.left, f"{self.where}: the adapter added {sorted(self.left)}"


def nanoseconds(text: str) -> int:
    for unit, factor in (("ms", 1_000_000), ("s", NANOSECONDS)):
        if text.endswith(unit) and text[: -len(unit)].isdigit():
            return int(text[: -len(unit)]) * factor
    raise AssertionError(f"not a duration of whole seconds or milliseconds: {text!r}")


def _labels(items: list[Any]) -> dict[str, str]:
    labels = {}
    for item in items:
        label = Unread("label", item)
        labels[label.take("label")] = label.take("value")
        label.done()
    return labels


def _file(item: Any, kind: str) -> dict[str, Any]:
    """A secret's or config's reference; `kind` is "secret" or "config"."""
    ref = Unread(kind, item)
    back = {
        "File": {
            "Name": ref.take("file_name"),
            "UID": ref.take("file_uid"),
            "GID": ref.take("file_gid"),
            "Mode": ref.take("file_mode"),
        },
        f"{kind.title()}ID": ref.take(f"{kind}_id"),
        f"{kind.title()}Name": ref.take(f"{kind}_name"),
    }
    ref.done()
    return back


def _mount(item: Any) -> dict[str, Any]:
    mount = Unread("mount", item)
    back: dict[str, Any] = {"Type": mount.take("type"), "Target": mount.take("target")}
    source = mount.optional("source")
    if source is not None:
        back["Source"] = source
    back["ReadOnly"] = mount.take("read_only")
    tmpfs = mount.optional("tmpfs_options")
    if tmpfs is not None:
        options = Unread("tmpfs_options", tmpfs)
        back["TmpfsOptions"] = {
            "SizeBytes": options.take("size_bytes"),
            "Mode": options.take("mode"),
        }
        options.done()
    mount.done()
    return back


def _container(value: Any) -> dict[str, Any]:
    spec = Unread("container_spec", value)
    check = Unread("healthcheck", spec.take("healthcheck"))
    back: dict[str, Any] = {
        "Image": spec.take("image"),
        "Env": [f"{name}={text}" for name, text in sorted(spec.take("env").items())],
        "User": spec.take("user"),
        "Labels": _labels(spec.take("labels")),
        "Healthcheck": {
            "Test": list(check.take("tests")),
            "Interval": nanoseconds(check.take("interval")),
            "Timeout": nanoseconds(check.take("timeout")),
            "Retries": check.take("retries"),
            "StartPeriod": nanoseconds(check.take("start_period")),
        },
        "ReadOnly": spec.take("read_only"),
        "Mounts": [_mount(item) for item in spec.take("mounts")],
        "StopGracePeriod": nanoseconds(spec.take("stop_grace_period")),
        "CapabilityDrop": list(spec.take("cap_drops")),
        "CapabilityAdd": list(spec.take("cap_adds")),
        "Secrets": [_file(item, "secret") for item in spec.take("secrets")],
        "Configs": [_file(item, "config") for item in spec.take("configs")],
    }
    check.done()
    commands = spec.optional("commands")
    if commands is not None:
        back["Command"] = list(commands)
    spec.done()
    return back


def _spread(preference: str) -> dict[str, Any]:
    strategy, _, descriptor = preference.partition("=")
    assert strategy == "spread", preference
    return {"Spread": {"SpreadDescriptor": descriptor}}


def _task(value: Any) -> dict[str, Any]:
    task = Unread("task_spec", value)
    resources = Unread("resources", task.take("resources"))
    limits = Unread("limits", resources.take("limits"))
    restart = Unread("restart_policy", task.take("restart_policy"))
    placement = Unread("placement", task.take("placement"))
    log = Unread("log_driver", task.take("log_driver"))
    networks = []
    for item in task.take("networks_advanceds"):
        network = Unread("networks_advanced", item)
        networks.append({"Target": network.take("id"), "Aliases": list(network.take("aliases"))})
        network.done()
    placement_back: dict[str, Any] = {
        "Constraints": list(placement.take("constraints")),
        "Preferences": [_spread(p) for p in placement.take("prefs")],
    }
    max_replicas = placement.optional("max_replicas")
    if max_replicas is not None:
        placement_back["MaxReplicas"] = max_replicas
    back = {
        "ContainerSpec": _container(task.take("container_spec")),
        "Resources": {
            "Limits": {
                "MemoryBytes": limits.take("memory_bytes"),
                "NanoCPUs": limits.take("nano_cpus"),
            }
        },
        "RestartPolicy": {
            "Condition": restart.take("condition"),
            "Delay": nanoseconds(restart.take("delay")),
            "MaxAttempts": restart.take("max_attempts"),
        },
        "Placement": placement_back,
        "Networks": networks,
        "LogDriver": {"Name": log.take("name"), "Options": dict(log.take("options"))},
    }
    for reader in (task, resources, limits, restart, placement, log):
        reader.done()
    return back


def _policy(value: Any) -> dict[str, Any]:
    policy = Unread("policy", value)
    ratio = policy.take("max_failure_ratio")
    assert isinstance(ratio, str), "the provider's max_failure_ratio is a string"
    back = {
        "Parallelism": policy.take("parallelism"),
        "Delay": nanoseconds(policy.take("delay")),
        "FailureAction": policy.take("failure_action"),
        "Monitor": nanoseconds(policy.take("monitor")),
        "MaxFailureRatio": float(ratio),
        "Order": policy.take("order"),
    }
    policy.done()
    return back


def to_engine(args: Mapping[str, Any]) -> dict[str, Any]:
    """docker.Service inputs in the engine's ServiceSpec shape."""
    left = dict(args)
    mode = Unread("mode", left.pop("mode"))
    replicated = Unread("replicated", mode.take("replicated"))
    endpoint = Unread("endpoint_spec", left.pop("endpoint_spec"))
    ports = []
    for item in endpoint.take("ports"):
        port = Unread("port", item)
        ports.append(
            {
                "Protocol": port.take("protocol"),
                "TargetPort": port.take("target_port"),
                "PublishedPort": port.take("published_port"),
                "PublishMode": port.take("publish_mode"),
            }
        )
        port.done()
    back = {
        "Name": left.pop("name"),
        "Labels": _labels(left.pop("labels")),
        "TaskTemplate": _task(left.pop("task_spec")),
        "Mode": {"Replicated": {"Replicas": replicated.take("replicas")}},
        "UpdateConfig": _policy(left.pop("update_config")),
        "RollbackConfig": _policy(left.pop("rollback_config")),
        "EndpointSpec": {"Mode": endpoint.take("mode"), "Ports": ports},
    }
    for reader in (mode, replicated, endpoint):
        reader.done()
    assert not left, f"the adapter added {sorted(left)}"
    return back


def without_gaps(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The engine spec minus KNOWN_GAPS (a gap must exist to be listed)."""
    copy: dict[str, Any] = _deep_copy(spec)
    for path in KNOWN_GAPS:
        parent = copy
        for key in path[:-1]:
            parent = parent[key]
        assert path[-1] in parent, f"{'.'.join(path)} is listed as a gap but not in the spec"
        del parent[path[-1]]
    return copy


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _deep_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_deep_copy(item) for item in value]
    return value


def differences(expected: Any, found: Any, path: str = "") -> list[str]:
    """Every property where the two differ, by path."""
    if isinstance(expected, Mapping) and isinstance(found, Mapping):
        found_out = []
        for key in sorted(set(expected) | set(found)):
            if key not in found:
                found_out.append(f"{path}.{key}: dropped")
            elif key not in expected:
                found_out.append(f"{path}.{key}: added")
            else:
                found_out += differences(expected[key], found[key], f"{path}.{key}")
        return found_out
    if isinstance(expected, list) and isinstance(found, list):
        if len(expected) != len(found):
            return [f"{path}: {len(expected)} items, the adapter gives {len(found)}"]
        return [
            d
            for i, (a, b) in enumerate(zip(expected, found, strict=True))
            for d in differences(a, b, f"{path}[{i}]")
        ]
    if type(expected) is not type(found) or expected != found:
        return [f"{path}: {expected!r} != {found!r}"]
    return []


# --- the round trip ---------------------------------------------------------------------


@pytest.mark.parametrize(("name", "topology", "service"), CASES, ids=IDS)
def test_the_stacks_deploy_the_engine_spec_property_by_property(
    name: str, topology: Topology, service: ServiceSpec
) -> None:
    expected = engine(topology, service)
    found = to_engine(service_spec_args(expected))
    assert differences(without_gaps(expected), found) == []


def test_the_known_gaps_are_the_adapters_and_each_says_why() -> None:
    assert set(KNOWN_GAPS) == set(UNSUPPORTED)
    assert all(len(reason) > 20 for reason in UNSUPPORTED.values())


def test_every_topology_covers_every_kind_of_property() -> None:
    specs = [engine(topology, service) for _, topology, service in CASES]
    containers = [spec["TaskTemplate"]["ContainerSpec"] for spec in specs]
    assert any("Command" in c for c in containers)
    assert any("Command" not in c for c in containers)
    assert any(c["Secrets"] for c in containers)
    assert any(c["Configs"] for c in containers)
    kinds = {mount["Type"] for c in containers for mount in c["Mounts"]}
    assert kinds == {"volume", "tmpfs"}
    assert any(spec["EndpointSpec"]["Ports"] for spec in specs)
    assert any(spec["TaskTemplate"]["Placement"]["Constraints"] for spec in specs)
    assert any(spec["TaskTemplate"]["Placement"].get("MaxReplicas") == 1 for spec in specs)
    assert any("MaxReplicas" not in spec["TaskTemplate"]["Placement"] for spec in specs)
    assert {spec["Mode"]["Replicated"]["Replicas"] for spec in specs} >= {1, 3}


def test_a_property_the_adapter_does_not_know_fails_loudly() -> None:
    topology = topologies()["prod"]
    spec = engine(topology, topology.api)
    spec["TaskTemplate"]["ContainerSpec"]["Hostname"] = "api"
    with pytest.raises(
        ValueError, match=r"ContainerSpec: no pulumi-docker mapping for \['Hostname'\]"
    ):
        service_spec_args(spec)
    spec = engine(topology, topology.api)
    spec["TaskTemplate"]["Resources"]["Reservations"] = {"MemoryBytes": 1}
    with pytest.raises(ValueError, match="Reservations"):
        service_spec_args(spec)


def test_durations_that_are_not_whole_milliseconds_are_refused() -> None:
    topology = topologies()["prod"]
    spec = engine(topology, topology.api)
    spec["UpdateConfig"]["Delay"] = 1500 * 1_000_000
    assert service_spec_args(spec)["update_config"].delay == "1500ms"
    spec["UpdateConfig"]["Delay"] = 1
    with pytest.raises(ValueError, match="milliseconds"):
        service_spec_args(spec)


def test_every_rollback_failure_action_is_one_the_provider_accepts() -> None:
    for _, topology, service in CASES:
        action = engine(topology, service)["RollbackConfig"]["FailureAction"]
        assert action in ("pause", "continue"), service.name


# --- placement across nodes ----------------------------------------------------------------


def _placement(spec: TopologySpec, role: str) -> dict[str, Any]:
    topology = describe(spec)
    return dict(engine(topology, topology.service(role))["TaskTemplate"]["Placement"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("replicas", "nodes", "cap"), [(2, 1, None), (2, 2, None), (2, 3, 1), (3, 3, None), (1, 2, 1)]
)
def test_the_api_is_capped_at_one_replica_per_node_only_while_nodes_are_spare(
    replicas: int, nodes: int, cap: int | None
) -> None:
    spec = TopologySpec(
        environment="staging", images=Images(service=SERVICE_IMAGE), replicas=replicas, nodes=nodes
    )
    placement = _placement(spec, "api")
    assert placement.get("MaxReplicas") == cap
    assert placement["Preferences"] == [{"Spread": {"SpreadDescriptor": "node.id"}}]
    assert placement["Constraints"] == []


@pytest.mark.parametrize("nodes", [1, 2, 3])
def test_redis_and_the_proxy_stay_on_the_labelled_first_manager(nodes: int) -> None:
    spec = TopologySpec(environment="prod", images=Images(service=SERVICE_IMAGE), nodes=nodes)
    for role, label in (("redis", DATASTORE_LABEL), ("proxy", EDGE_LABEL)):
        constraints = _placement(spec, role)["Constraints"]
        pinned = [f"node.labels.{label} == true"] if nodes > 1 else []
        assert constraints == ["node.role == manager", *pinned], role
