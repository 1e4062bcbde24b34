"""A real multi-node swarm on this machine, for the suite (tests/infra/cluster, through the
`swarm_cluster` fixture of tests/support/swarm_cluster.py) and the multi-node benchmark.

Three Docker-in-Docker nodes, each a container of the host engine with Debian's
dockerd inside (infra/local/recipes/swarm-node/), on one user-defined bridge network:
node 1 inits the swarm (the one manager, advertising its bridge address) and
the other two join it as workers. A registry from Debian's `docker-registry`
(a container of the same image) holds the images the topology runs; the host
pushes them, and every node pulls by digest (`host:port/repo@sha256:...`) as
prod does, trusting that registry as an insecure one.

Node 1 publishes its engine API, the proxy's port and Postgres's port on the
host's loopback only: a `docker.DockerClient` on that API drives the cluster,
and a `LocalRunner` of its own (the "test" environment, but with a state
directory of its own: the engine objects live inside the nodes, never on the
host's engine) runs the whole topology on it, the job sources' stand-ins
among it, as on a `make local` without keys.

Everything this module creates on the host carries CLUSTER_LABEL and is
removed by `remove_cluster` when the caller is done; what an interrupted run
left is removed the same way before a start. The host engine's own swarm,
services and networks are never touched.

The nodes' flags are the ones that work here (../shared/reference/
containers-here.md): `--privileged` is refused on this machine, and the
cgroups (v1) are shared with the host engine, so each node's dockerd gets a
cgroup parent of its own.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields, replace
from pathlib import Path

import docker
import httpx
from docker.errors import APIError, NotFound
from docker.models.containers import Container
from docker.models.volumes import Volume
from docker.types import IPAMConfig, IPAMPool

from harness.images import TestImages
from harness.servers import free_port
from infra.local.images import standin
from infra.local.runner import LocalRunner, TaskStatus
from infra.local.state import STATE_ROOT, LocalConfig, LocalState
from infra.standins import JSEARCH_KEY, SOURCES, THEIRSTACK_KEY
from infra.topology import Images

# Marks every container, network and volume this module makes on the host engine.
CLUSTER_LABEL = "org.jobsearch.swarm-cluster"
PREFIX = "jobsearch-swarm"
NETWORK = f"{PREFIX}-net"
# The nodes' bridge: outside the inner engines' own pools (172.17-31/16 for their
# bridges, 10.0.0.0/8 for the swarm's overlays), so nothing inside overlaps it.
SUBNET = "192.168.239.0/24"
GATEWAY = "192.168.239.1"
REGISTRY_IP = "192.168.239.2"
REGISTRY_PORT = 5000
REGISTRY_HOST = f"{REGISTRY_IP}:{REGISTRY_PORT}"
NODE_COUNT = 3
ENGINE_PORT = 2375
SWARM_PORT = 2377
# The topology's overlay inside the cluster (10.233.0.0/24).
CLUSTER_SUBNET_OCTET = 233
# The runner's state: apart from the one-node "test" instance's (.cache/local/test).
CLUSTER_STATE_ROOT = STATE_ROOT.parent / "swarm-cluster"
CGROUP_ROOT = Path("/sys/fs/cgroup")
START_TIMEOUT_SECONDS = 90


class ClusterError(Exception):
    """The cluster could not be set up; the message has the engine's own words."""


def node_name(number: int) -> str:
    return f"{PREFIX}-node{number}"


def node_ip(number: int) -> str:
    return f"192.168.239.{10 + number}"


@dataclass(frozen=True)
class ClusterImages:
    """What the cluster runs, each a registry reference by digest: the topology's images,
    and a second service image to roll out."""

    runtime: Images
    variant: str

    @property
    def service(self) -> str:
        return self.runtime.service

    def everything(self) -> tuple[str, ...]:
        refs = (getattr(self.runtime, field.name) for field in fields(Images))
        return (*(ref for ref in refs if ref), self.variant)


@dataclass
class SwarmCluster:
    host: docker.DockerClient
    client: docker.DockerClient  # node 1's engine: the swarm's manager
    images: ClusterImages
    runner: LocalRunner
    setup_seconds: float

    @property
    def url(self) -> str:
        return self.runner.topology(self.images.service).public_url

    def node_container(self, hostname: str) -> Container:
        return self.host.containers.get(hostname)

    def node_ids(self) -> dict[str, str]:
        """Hostname -> swarm node id."""
        return {node["hostname"]: node["id"] for node in self.runner.nodes()}

    def node_states(self) -> dict[str, tuple[str, str]]:
        """Hostname -> (state, availability), as the manager sees them."""
        return {
            node["hostname"]: (node["state"], node["availability"]) for node in self.runner.nodes()
        }

    def set_availability(self, hostname: str, availability: str) -> None:
        """`docker node update --availability ...` through the manager's API."""
        node = self.client.nodes.get(self.node_ids()[hostname])
        spec = dict(node.attrs["Spec"])
        spec["Availability"] = availability
        node.update(spec)

    def running_api(self) -> list[TaskStatus]:
        """The API tasks running on a node the manager sees as up."""
        ready = {node["id"] for node in self.runner.nodes() if node["state"] == "ready"}
        return [
            task
            for task in self.runner.tasks("api")
            if task.desired == "running" and task.state == "running" and task.node in ready
        ]

    def api_hostnames(self) -> list[str]:
        """The hostname of each running API task's node."""
        by_id = {node_id: hostname for hostname, node_id in self.node_ids().items()}
        return sorted(by_id.get(task.node, task.node) for task in self.running_api())

    def wait_for_nodes(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Every node ready again, as the manager sees it."""
        _wait(
            lambda: (
                all(state == "ready" for state, _ in self.node_states().values())
                and len(self.node_states()) == NODE_COUNT
            ),
            timeout,
            lambda: f"nodes not all ready: {self.node_states()}",
        )


def _wait(
    done: Callable[[], bool], timeout: float, why: Callable[[], str], step: float = 0.5
) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise ClusterError(f"after {timeout:.0f}s: {why()}")
        time.sleep(step)


def _labels() -> dict[str, str]:
    return {CLUSTER_LABEL: "1"}


def _remove_cgroups(name: str) -> None:
    """A node's dockerd made /<name>/<container> in every v1 hierarchy; remove
    what is left (empty once the node's processes are gone)."""
    if not CGROUP_ROOT.is_dir():
        return
    for hierarchy in CGROUP_ROOT.iterdir():
        top = hierarchy / name
        if not top.is_dir():
            continue
        for directory in sorted(
            (path for path in top.rglob("*") if path.is_dir()),
            key=lambda path: len(path.parts),
            reverse=True,
        ):
            with contextlib.suppress(OSError):
                directory.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()


def remove_cluster(host: docker.DockerClient) -> list[str]:
    """Everything a run of this module left on the host engine (found by label)."""
    removed: list[str] = []
    label: dict[str, str | list[str] | bool] = {"label": [CLUSTER_LABEL]}
    for container in host.containers.list(all=True, filters=label):
        container.remove(force=True, v=True)
        removed.append(str(container.name))
    for network in host.networks.list(filters=label):
        with contextlib.suppress(NotFound):
            network.remove()
            removed.append(str(network.name))
    # vfs leaves a full copy of every layer in a node's volume: removing one takes
    # a while, so all at once.
    volumes = host.volumes.list(filters=label)

    def remove_volume(volume: Volume) -> None:
        with contextlib.suppress(NotFound):
            volume.remove(force=True)

    with ThreadPoolExecutor(max_workers=max(1, len(volumes))) as pool:
        list(pool.map(remove_volume, volumes))
    removed += [str(volume.name) for volume in volumes]
    for number in range(1, NODE_COUNT + 1):
        _remove_cgroups(node_name(number))
    # The tags the pushes made (the layers stay: they are the test images' own).
    for image in host.images.list():
        for tag in image.tags:
            if f"/{PREFIX}/" in tag:
                with contextlib.suppress(APIError):
                    host.images.remove(tag, noprune=True)
                    removed.append(tag)
    return removed


def _start_registry(host: docker.DockerClient, image: str, port: int) -> Container:
    return host.containers.run(
        image,
        ["docker-registry", "serve", "/etc/jobsearch/registry.yml"],
        name=f"{PREFIX}-registry",
        detach=True,
        labels=_labels(),
        network=NETWORK,
        networking_config={NETWORK: host.api.create_endpoint_config(ipv4_address=REGISTRY_IP)},
        ports={f"{REGISTRY_PORT}/tcp": ("127.0.0.1", port)},
    )


def _start_node(
    host: docker.DockerClient, image: str, number: int, published: Mapping[int, int]
) -> Container:
    """A node container, through the low-level API: `systempaths=unconfined` is the
    CLI's word for empty MaskedPaths and ReadonlyPaths, which the engine itself
    refuses as a security option ("invalid --security-opt 2")."""
    name = node_name(number)
    volume = f"{name}-docker"
    host.volumes.create(volume, labels=_labels())
    command = [
        "dockerd",
        "--storage-driver=vfs",
        # cgroups v1, shared with the host engine: each node a parent of its own.
        f"--cgroup-parent=/{name}",
        f"--insecure-registry={REGISTRY_HOST}",
        "--host=unix:///var/run/docker.sock",
        f"--host=tcp://0.0.0.0:{ENGINE_PORT}",
    ]
    api = host.api
    host_config = api.create_host_config(
        binds={
            "/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
            # vfs on a volume (ext4), not on the container's own overlay.
            volume: {"bind": "/var/lib/docker", "mode": "rw"},
        },
        # Pid files and sockets: fresh at every start, as after a reboot.
        tmpfs={"/run": "rw,exec"},
        port_bindings={
            f"{inside}/tcp": ("127.0.0.1", outside) for inside, outside in published.items()
        },
        init=True,  # dockerd is not an init: something must reap its orphans
        cap_add=["ALL"],
        # This machine's capability bounding set lacks CAP_SYS_RESOURCE.
        cap_drop=["SYS_RESOURCE"],
        security_opt=["seccomp=unconfined", "apparmor=unconfined"],
    )
    host_config["MaskedPaths"] = []
    host_config["ReadonlyPaths"] = []
    created = api.create_container(
        image,
        command,
        name=name,
        hostname=name,
        labels=_labels(),
        ports=[(inside, "tcp") for inside in published],
        host_config=host_config,
        networking_config={
            "EndpointsConfig": {NETWORK: api.create_endpoint_config(ipv4_address=node_ip(number))}
        },
    )
    container = host.containers.get(created["Id"])
    container.start()
    return container


def _exec(container: Container, *command: str) -> str:
    result = container.exec_run(list(command))
    raw = result.output
    output = raw.decode(errors="replace").strip() if isinstance(raw, bytes) else ""
    if result.exit_code != 0:
        raise ClusterError(f"{container.name}: `{' '.join(command)}` failed: {output[-500:]}")
    return output


def _wait_engine(container: Container) -> None:
    def up() -> bool:
        container.reload()
        if container.status != "running":
            return True  # reported below
        return container.exec_run(["docker", "version", "--format", "{{.Server.Version}}"])[0] == 0

    _wait(up, START_TIMEOUT_SECONDS, lambda: f"{container.name}'s dockerd does not answer")
    if container.status != "running":
        raw = container.logs(tail=8)
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else ""
        tail = text.strip().replace("\n", " / ")
        raise ClusterError(f"{container.name} exited ({container.status}): {tail}")


def _push(host: docker.DockerClient, image: str, name: str, port: int) -> str:
    """Push a host image to the registry; its reference by digest, as the nodes see it."""
    repository = f"127.0.0.1:{port}/{PREFIX}/{name}"
    host.images.get(image).tag(repository, tag="cluster")
    digest = None
    for line in host.images.push(repository, tag="cluster", stream=True, decode=True):
        if "error" in line:
            raise ClusterError(f"push of {name} failed: {line['error']}")
        digest = (line.get("aux") or {}).get("Digest", digest)
    if not digest:
        raise ClusterError(f"push of {name}: the registry returned no digest")
    return f"{REGISTRY_HOST}/{PREFIX}/{name}@{digest}"


def _push_images(host: docker.DockerClient, images: TestImages, port: int) -> ClusterImages:
    pushed = {
        field.name: _push(host, ref, field.name, port)
        for field in fields(Images)
        if (ref := getattr(images.runtime, field.name))
    }
    return ClusterImages(
        runtime=Images(**pushed), variant=_push(host, images.variant, "service-variant", port)
    )


def _form_swarm(client: docker.DockerClient, workers: list[Container]) -> None:
    client.swarm.init(advertise_addr=node_ip(1), listen_addr=f"0.0.0.0:{SWARM_PORT}")
    client.swarm.reload()
    token = client.swarm.attrs["JoinTokens"]["Worker"]
    for number, worker in enumerate(workers, start=2):
        _exec(
            worker,
            "docker",
            "swarm",
            "join",
            "--token",
            token,
            "--advertise-addr",
            node_ip(number),
            f"{node_ip(1)}:{SWARM_PORT}",
        )


def _pull_everywhere(nodes: list[Container], images: ClusterImages) -> None:
    """What each node will run, pulled by digest before the topology starts: the
    manager runs everything, a worker only API replicas."""
    jobs = [(nodes[0], ref) for ref in images.everything()]
    jobs += [(node, ref) for node in nodes[1:] for ref in (images.service, images.variant)]
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        # One pull at a time per node; the nodes in parallel.
        def pull_all(node: Container) -> None:
            for owner, ref in jobs:
                if owner is node:
                    _exec(node, "docker", "pull", "--quiet", ref)

        for future in [pool.submit(pull_all, node) for node in nodes]:
            future.result()


def _prepare_runner(
    client: docker.DockerClient,
    images: ClusterImages,
    *,
    http_port: int,
    postgres_port: int,
    say: Callable[[str], None],
) -> LocalRunner:
    shutil.rmtree(CLUSTER_STATE_ROOT, ignore_errors=True)  # the database it named is gone
    state = LocalState("test", root=CLUSTER_STATE_ROOT)
    config = LocalConfig(
        environment="test",
        image_source="debian",
        http_port=http_port,
        postgres_port=postgres_port,
        subnet_octet=CLUSTER_SUBNET_OCTET,
        replicas=2,
        # Two cores for three engines and everything they run: one worker a replica.
        workers=1,
        # Both job sources are the topology's stand-ins, on the manager.
        images=replace(images.runtime, service=""),
        sample_sources=SOURCES,
        settings={
            "LOG_LEVEL": "WARNING",
            "RATE_LIMIT": "1000/second",
            "UPSTREAM_TIMEOUT_SECONDS": "20",
        },
    )
    state.prepare()
    state.save_config(config)
    state.set_api_keys({"RAPID_API_KEY": JSEARCH_KEY, "THEIRSTACK_API_KEY": THEIRSTACK_KEY})
    return LocalRunner(client, state, config, say=say)


def start_cluster(
    host: docker.DockerClient, images: TestImages, say: Callable[[str], None]
) -> SwarmCluster:
    """Nodes, registry, swarm and topology; the caller removes them (remove_cluster)."""
    started = time.monotonic()

    def step(what: str) -> None:
        say(f"{time.monotonic() - started:6.1f}s {what}")

    node_image = standin(host, "swarm-node", images.base)
    step(f"node image {node_image}")
    host.networks.create(
        NETWORK,
        driver="bridge",
        ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=SUBNET, gateway=GATEWAY)]),
        labels=_labels(),
    )
    registry_port = free_port()
    registry = _start_registry(host, node_image, registry_port)
    engine_port, http_port, postgres_port = free_port(), free_port(), free_port()
    manager_ports = {ENGINE_PORT: engine_port, http_port: http_port, postgres_port: postgres_port}
    nodes = [
        _start_node(host, node_image, number, manager_ports if number == 1 else {})
        for number in range(1, NODE_COUNT + 1)
    ]
    step("registry and nodes started")
    _wait(
        lambda: registry.exec_run(["true"])[0] == 0 and _registry_answers(registry_port),
        30,
        lambda: f"the registry does not answer: {registry.logs(tail=5)!r}",
    )
    pushed = _push_images(host, images, registry_port)
    step("images pushed to the registry")
    for node in nodes:
        _wait_engine(node)
    client = docker.DockerClient(base_url=f"tcp://127.0.0.1:{engine_port}", timeout=300)
    client.ping()
    _form_swarm(client, nodes[1:])
    step("swarm formed")
    _pull_everywhere(nodes, pushed)
    step("images pulled by digest on every node")
    runner = _prepare_runner(
        client, pushed, http_port=http_port, postgres_port=postgres_port, say=say
    )
    cluster = SwarmCluster(host, client, pushed, runner, setup_seconds=0.0)
    cluster.wait_for_nodes()
    runner.up(pushed.service)
    cluster.setup_seconds = time.monotonic() - started
    step("topology up")
    return cluster


def _registry_answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
