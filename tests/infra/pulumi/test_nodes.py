"""Past one machine: the program's graph for 1, 2 and 3 nodes, under Pulumi's mocks.

staging is one Hetzner VM, staging-2 two (one manager), staging-3 three (three
managers, two replicas: at most one per node), prod three, and prod-existing
three servers it does not create (one manager, two workers). What no mock can
show, the swarm really forming, draining and rescheduling, is the other half
of this work (tests/infra/cluster, Docker-in-Docker).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.components.host import PRIVATE_NETWORK, PRIVATE_SUBNET, SWARM_PORTS, private_address
from infra.components.monitoring import HEARTBEAT_PING_URL
from infra.components.replica_watch import (
    heartbeat_script,
    install_script,
    uninstall_script,
    watch_name,
)
from infra.policy.policies import StackResource, at_least_two_nodes, swarm_nodes
from infra.topology import DATASTORE_LABEL, EDGE_LABEL
from tests.infra.pulumi.conftest import EXISTING_SERVERS, SMOKE_PUBLIC_KEY
from tests.infra.pulumi.graph import Graph, Resource, is_secret
from tests.infra.pulumi.harness import FAKE_JOIN_TOKEN, fake_host_public_key, server_ipv4
from tests.infra.pulumi.test_program import REMOTE_COMMAND, container, service

SERVER = "hcloud:index/server:Server"
EVERYWHERE = ["0.0.0.0/0", "::/0"]
# (variant, nodes, managers)
SIZES = [("staging", 1, 1), ("staging-2", 2, 1), ("staging-3", 3, 3), ("prod", 3, 3)]


def servers(graph: Graph) -> list[Resource]:
    return sorted(graph.of_type(SERVER), key=lambda server: server.name)


def by_name(graph: Graph, prefix: str) -> list[Resource]:
    """host-join-2, host-join-3, ...: one resource per extra node."""
    return sorted(
        (r for r in graph.resources if r.name.startswith(f"{prefix}-") and r.name[-1].isdigit()),
        key=lambda r: r.name,
    )


def cloud_config(server: Resource) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(server["userData"])
    return document


@pytest.mark.parametrize(("name", "nodes", "managers"), SIZES)
def test_the_stack_creates_its_nodes_and_managers(
    graphs: Mapping[str, Graph], name: str, nodes: int, managers: int
) -> None:
    graph = graphs[name]
    created = servers(graph)
    assert len(created) == nodes
    environment = graph.outputs["environment"]
    names = [f"jobsearch-{environment}"] + [f"jobsearch-{environment}-{i}" for i in (2, 3)]
    assert sorted(s["name"] for s in created) == sorted(names[:nodes])
    roles = [s["labels"]["role"] for s in created]
    assert roles.count("manager") == managers
    assert graph.outputs["nodes"] == [server_ipv4(i) for i in range(nodes)]
    joins = by_name(graph, "host-join")
    assert len(joins) == nodes - 1
    # Managers join with the manager token, workers with the worker token.
    tokens = sorted(j["environment"]["SWARM_JOIN_TOKEN"].rsplit("-", 1)[1] for j in joins)
    assert tokens == sorted(["manager"] * (managers - 1) + ["worker"] * (nodes - managers))
    assert len(swarm_nodes([StackResource(r.type, r.name, r.inputs) for r in graph.resources])) == (
        nodes
    )
    if name == "prod":
        assert all(s.protect and s["deleteProtection"] for s in created)


@pytest.mark.parametrize(("name", "nodes", "managers"), SIZES)
def test_only_ssh_http_and_https_are_public_and_swarm_ports_only_private(
    graphs: Mapping[str, Graph], name: str, nodes: int, managers: int
) -> None:
    graph = graphs[name]
    [firewall] = graph.of_type("hcloud:index/firewall:Firewall")
    public = sorted(
        (rule["protocol"], int(rule["port"]))
        for rule in firewall["rules"]
        if rule["sourceIps"] == EVERYWHERE
    )
    assert public == [("tcp", 22), ("tcp", 80), ("tcp", 443)]
    private = sorted(
        (rule["protocol"], int(rule["port"]))
        for rule in firewall["rules"]
        if rule["sourceIps"] != EVERYWHERE
    )
    assert (
        private
        == sorted(SWARM_PORTS)
        == [
            ("tcp", 2377),
            ("tcp", 7946),
            ("udp", 4789),
            ("udp", 7946),
        ]
    )
    for rule in firewall["rules"]:
        assert rule["sourceIps"] in (EVERYWHERE, [PRIVATE_NETWORK]), rule
    for server in servers(graph):
        assert server["firewallIds"], server.name
        # ufw says the same on every VM (Hetzner's firewall sees the public interface only).
        rules = [c for c in cloud_config(server)["runcmd"] if c[:2] == ["ufw", "allow"]]
        assert [c[2] for c in rules if "from" not in c] == ["22/tcp", "80/tcp", "443/tcp"]
        swarm = sorted((c[-1], int(c[7])) for c in rules if "from" in c)
        assert swarm == sorted(SWARM_PORTS)
        assert {c[3] for c in rules if "from" in c} == {PRIVATE_NETWORK}


@pytest.mark.parametrize(("name", "nodes", "managers"), SIZES)
def test_every_node_is_on_the_private_network_and_the_swarm_uses_it(
    graphs: Mapping[str, Graph], name: str, nodes: int, managers: int
) -> None:
    graph = graphs[name]
    network = graph.named("host-network")
    assert network["ipRange"] == PRIVATE_NETWORK
    subnet = graph.named("host-subnet")
    assert subnet["ipRange"] == PRIVATE_SUBNET
    assert network.urn in subnet.dependencies
    attached = sorted(
        graph.of_type("hcloud:index/serverNetwork:ServerNetwork"), key=lambda r: r.name
    )
    assert sorted(a["ip"] for a in attached) == [private_address(i) for i in range(nodes)]
    init = graph.named("host-swarm")["create"]
    assert f"docker swarm init --advertise-addr {private_address(0)} " in init
    for index, join in enumerate(by_name(graph, "host-join"), start=1):
        assert (
            f"--advertise-addr {private_address(index)} {private_address(0)}:2377" in join["create"]
        )


@pytest.mark.parametrize("name", ["staging-2", "staging-3", "prod", "prod-existing"])
def test_the_join_tokens_are_read_from_the_first_manager_and_kept_secret(
    graphs: Mapping[str, Graph], name: str
) -> None:
    graph = graphs[name]
    first = graph.outputs["host"]
    readers = [r for r in graph.of_type(REMOTE_COMMAND) if "join-token" in r.name]
    assert readers
    for reader in readers:
        role = reader.name.rsplit("-", 1)[1]
        assert reader["create"] == f"docker swarm join-token -q {role}"
        assert reader["connection"]["host"] == first
        assert "stdout" in reader.additional_secret_outputs
        assert graph.depends_on(reader, graph.named("host-swarm"))
    for join in by_name(graph, "host-join"):
        token = join.inputs["environment"]["SWARM_JOIN_TOKEN"]
        assert is_secret(token), join.name
        assert "environment" in join.additional_secret_outputs
        assert FAKE_JOIN_TOKEN not in join["create"]
        assert '"$SWARM_JOIN_TOKEN"' in join["create"]


@pytest.mark.parametrize("name", ["staging-2", "staging-3", "prod", "prod-existing"])
def test_a_node_is_drained_before_its_server_goes(graphs: Mapping[str, Graph], name: str) -> None:
    graph = graphs[name]
    members = by_name(graph, "host-node")
    joins = by_name(graph, "host-join")
    assert len(members) == len(joins) > 0
    hcloud = {s.name: s for s in graph.of_type(SERVER)}
    for member, join in zip(members, joins, strict=True):
        suffix = member.name.rsplit("-", 1)[1]
        # Pulumi deletes a resource before what it depends on: the drain runs first.
        assert graph.depends_on(member, join)
        if hcloud:
            assert graph.depends_on(member, hcloud[f"host-server-{suffix}"])
        # On the first manager, which outlives the node.
        assert member["connection"]["host"] == graph.outputs["host"]
        script = member["delete"]
        node_id = f"nodeid-host-join-{suffix}"
        assert f"node={node_id}\n" in script
        drain = script.index('docker node update --availability drain "$node"')
        wait = script.index("while :; do")
        remove = script.index('docker node rm --force "$node"')
        assert drain < wait < remove
        assert "docker node ps" in script
        assert "docker service ls" in script
        assert "docker node demote" in script
        # Every node joins before the services are created (the engine does not rebalance).
        assert graph.depends_on(graph.named("service-swarm"), member)
        assert graph.depends_on(service(graph, "api"), member)


def test_one_node_has_no_join_token_and_nothing_to_drain(graphs: Mapping[str, Graph]) -> None:
    for name in ("staging", "dev"):
        graph = graphs[name]
        assert not [r for r in graph.resources if "join" in r.name or "host-node" in r.name]
    assert graphs["dev"].outputs["nodes"] == ["127.0.0.1"]


@pytest.mark.parametrize(
    ("name", "cap"),
    [("staging", None), ("staging-2", None), ("staging-3", 1), ("prod", None), ("dev", None)],
)
def test_placement_spreads_the_api_and_pins_redis_and_the_proxy(
    graphs: Mapping[str, Graph], name: str, cap: int | None
) -> None:
    graph = graphs[name]
    api = service(graph, "api")["taskSpec"]["placement"]
    assert api["prefs"] == ["spread=node.id"]
    assert api.get("maxReplicas") == cap
    many = len(graph.of_type(SERVER)) > 1
    for role, label in (("redis", DATASTORE_LABEL), ("proxy", EDGE_LABEL)):
        constraints = service(graph, role)["taskSpec"]["placement"]["constraints"]
        expected = ["node.role == manager"]
        if many:
            expected.append(f"node.labels.{label} == true")
        assert constraints == expected, role
        # Its volume stays with it on that node.
        assert any(m["type"] == "volume" for m in container(service(graph, role))["mounts"])
    if graph.of_type(SERVER):
        init = graph.named("host-swarm")["create"]
        assert f"--label-add {DATASTORE_LABEL}=true --label-add {EDGE_LABEL}=true" in init
        assert graph.named("host-swarm")["connection"]["host"] == graph.outputs["host"]


@pytest.mark.parametrize("name", ["staging", "staging-2", "staging-3", "prod", "prod-existing"])
def test_every_node_is_reached_with_its_own_pinned_host_key(
    graphs: Mapping[str, Graph], name: str
) -> None:
    graph = graphs[name]
    if name == "prod-existing":
        pinned = {address: key for address, key, _ in EXISTING_SERVERS}
    else:
        count = len(graph.of_type(SERVER))
        pinned = {server_ipv4(i): fake_host_public_key(i).strip() for i in range(count)}
        for index, server in enumerate(servers(graph)):
            document = cloud_config(server)
            assert document["ssh_keys"]["ed25519_public"] == fake_host_public_key(index).strip()
    reached = set()
    for command in graph.of_type(REMOTE_COMMAND):
        host = command["connection"]["host"]
        assert command["connection"]["hostKey"] == pinned[host], command.name
        reached.add(host)
    assert reached == set(pinned), "a command runs on every node (cloud-init or join)"


def test_every_vm_gets_the_smoke_login_when_its_key_is_set(graphs: Mapping[str, Graph]) -> None:
    for server in servers(graphs["staging-3"]):
        users = {user["name"]: user for user in cloud_config(server)["users"]}
        assert set(users) == {"deploy", "smoke"}, server.name
        assert users["smoke"]["ssh_authorized_keys"][0].endswith(SMOKE_PUBLIC_KEY)
    for server in servers(graphs["staging-2"]):
        assert [user["name"] for user in cloud_config(server)["users"]] == ["deploy"]


@pytest.mark.parametrize(("name", "nodes", "managers"), [*SIZES, ("prod-existing", 3, 1)])
def test_every_manager_pings_the_replicas_heartbeat(
    graphs: Mapping[str, Graph], name: str, nodes: int, managers: int
) -> None:
    graph = graphs[name]
    watches = [r for r in graph.of_type(REMOTE_COMMAND) if r.name.startswith("replica-watch-")]
    assert len(watches) == managers
    monitor = graph.named("monitoring-JobSearchReplicasMissing")
    heartbeat = monitor["heartbeat"]
    assert (heartbeat["period"], heartbeat["periodUnit"]) == (1, "minutes")
    assert heartbeat["period"] + heartbeat["grace"] == 5
    assert is_secret(monitor.inputs["heartbeat"]["pingToken"])
    environment = graph.outputs["environment"]
    for watch in watches:
        url = watch.inputs["environment"]["HEARTBEAT_URL"]
        assert is_secret(url)
        assert watch["environment"]["HEARTBEAT_URL"] == HEARTBEAT_PING_URL + heartbeat["pingToken"]
        assert "environment" in watch.additional_secret_outputs
        assert "crontab" in watch["create"]
        assert watch_name(environment) in watch["delete"]
        assert f"org.jobsearch.environment={environment}" in watch["create"]
        assert graph.depends_on(watch, service(graph, "api"))


def test_the_policy_counts_the_nodes_of_each_graph(graphs: Mapping[str, Graph]) -> None:
    for name, expected in (("staging", 1), ("staging-2", 2), ("prod", 3), ("prod-existing", 3)):
        stack = [StackResource(r.type, r.name, r.inputs) for r in graphs[name].resources]
        assert len(swarm_nodes(stack)) == expected, name
        assert bool(at_least_two_nodes(stack)) is (expected < 2), name


# --- the heartbeat scripts, run for real with stand-ins for docker, python3 and crontab ---


def _stub(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


def _run(script: str, home: Path, bin_dir: Path) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(home)}
    return subprocess.run(
        ["/bin/sh", "-c", script],
        env={**environment, "HEARTBEAT_URL": HEARTBEAT_PING_URL + "tok"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(
    ("manager", "replicas", "pinged"),
    [
        ("true", "3/3\n1/1\n1/1", True),
        ("true", "2/2 (max 1 per node)\n1/1\n1/1", True),
        ("true", "4/3\n1/1\n1/1", True),  # a start-first rollout, one task ahead
        ("true", "2/3\n1/1\n1/1", False),
        ("true", "3/3\n0/1\n1/1", False),
        ("false", "3/3\n1/1\n1/1", False),
        ("true", "", False),
    ],
)
def test_a_manager_pings_only_while_every_service_is_whole(
    tmp_path: Path, manager: str, replicas: str, pinged: bool
) -> None:
    bin_dir, home = tmp_path / "bin", tmp_path / "home"
    bin_dir.mkdir()
    home.mkdir()
    (home / ".config").mkdir()
    (home / ".config" / f"{watch_name('prod')}.url").write_text(HEARTBEAT_PING_URL + "tok\n")
    _stub(
        bin_dir,
        "docker",
        f'case "$1" in info) echo {manager};; service) printf "{replicas}";; esac\n',
    )
    _stub(bin_dir, "python3", f'echo "$3" >> {tmp_path}/pings\n')
    result = _run(heartbeat_script("prod"), home, bin_dir)
    assert result.returncode == 0, result.stderr
    pings = (tmp_path / "pings").read_text().split() if (tmp_path / "pings").exists() else []
    assert pings == ([HEARTBEAT_PING_URL + "tok"] if pinged else [])


def test_installing_the_heartbeat_writes_the_url_privately_and_one_crontab_line(
    tmp_path: Path,
) -> None:
    bin_dir, home = tmp_path / "bin", tmp_path / "home"
    bin_dir.mkdir()
    home.mkdir()
    table = tmp_path / "crontab"
    table.write_text("0 3 * * * other-job\n")
    _stub(
        bin_dir,
        "crontab",
        f'if [ "$1" = -l ]; then cat {table}; else cat > {table}.new; mv {table}.new {table}; fi\n',
    )
    for _ in range(2):  # safe to run again: still one line
        result = _run(install_script("prod"), home, bin_dir)
        assert result.returncode == 0, result.stderr
    lines = table.read_text().splitlines()
    assert lines[0] == "0 3 * * * other-job"
    assert len([line for line in lines if watch_name("prod") in line]) == 1
    url_file = home / ".config" / f"{watch_name('prod')}.url"
    assert url_file.read_text() == HEARTBEAT_PING_URL + "tok\n"
    assert url_file.stat().st_mode & 0o077 == 0, "only the deploy user reads the token"
    assert (home / ".local" / "bin" / watch_name("prod")).read_text() == heartbeat_script("prod")
    result = _run(uninstall_script("prod"), home, bin_dir)
    assert result.returncode == 0, result.stderr
    assert table.read_text() == "0 3 * * * other-job\n"
    assert not url_file.exists()


def test_a_server_without_cron_warns_and_does_not_fail_the_deploy(tmp_path: Path) -> None:
    bin_dir, home = tmp_path / "bin", tmp_path / "home"
    bin_dir.mkdir()
    home.mkdir()
    result = subprocess.run(
        ["/bin/sh", "-c", install_script("prod")],
        env={"PATH": str(bin_dir), "HOME": str(home), "HEARTBEAT_URL": "x"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0
    assert "warning: cron is not installed" in result.stderr
