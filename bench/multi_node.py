"""6. Past one machine: requests per second through the proxy, the same two replicas on
one node and spread over two.

A real three-node swarm on this machine (Docker-in-Docker nodes, images pulled by
digest from a local registry: harness/swarm_cluster.py). The proxy runs on
the manager; the two API replicas run either both on one worker (a placement
constraint) or one on each of two workers (the topology's own `spread node.id`),
switched by the engine's rolling update. The same load (cached searches and
/health) runs for the same time in alternating rounds.

The nodes share this machine's 2 cores, so spreading cannot add CPU: the figure
is the overlay network's and the extra hop's cost, not a speed-up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bench.report import BenchError, BenchResult, median
from harness.background import BackgroundLoad
from harness.images import build_test_images
from harness.load import Call
from harness.swarm_cluster import SwarmCluster, node_name, remove_cluster, start_cluster
from infra.local.engine import ensure_engine
from infra.local.runner import FINGERPRINT_LABEL
from infra.local.state import STATE_ROOT

TITLE = "Past one machine: one node against two"


@dataclass(frozen=True)
class MultiNodeConfig:
    rounds: int = 2
    seconds: float = 20.0
    concurrency: int = 12

    @property
    def target(self) -> str:
        return "reported: the overhead of two nodes on one machine's 2 cores"

    @classmethod
    def tiny(cls) -> MultiNodeConfig:
        return cls(rounds=1, seconds=3.0, concurrency=4)


def _calls() -> list[Call]:
    searches = [
        Call("POST", "/api/jobs/jsearch", {"jobTitle": f"multi node {number}"})
        for number in range(6)
    ]
    return [*searches, Call("GET", "/health")]


def _place(cluster: SwarmCluster, hostname: str | None) -> None:
    """Both replicas on `hostname`, or (None) spread as the topology says."""
    spec: dict[str, Any] = cluster.runner.desired_specs(cluster.images.service)["api"]
    if hostname is not None:
        placement = spec["TaskTemplate"]["Placement"]
        placement["Constraints"] = [*placement["Constraints"], f"node.hostname == {hostname}"]
        spec["Labels"][FINGERPRINT_LABEL] += f"-on-{hostname}"
    else:
        # A task that still meets the placement keeps running when only the placement
        # changes (SwarmKit's updater): force new tasks, which the spread then places.
        current = cluster.runner.service("api")
        forced = current.attrs["Spec"]["TaskTemplate"].get("ForceUpdate", 0) if current else 0
        spec["TaskTemplate"]["ForceUpdate"] = int(forced) + 1
    cluster.runner.apply("api", spec)
    wanted = 1 if hostname is not None else 2
    deadline = time.monotonic() + 120
    while len(set(cluster.api_hostnames())) != wanted or len(cluster.api_hostnames()) != 2:
        if time.monotonic() > deadline:
            raise BenchError(f"replicas not placed as asked: {cluster.api_hostnames()}")
        time.sleep(0.5)


def _rps(url: str, config: MultiNodeConfig) -> float:
    with BackgroundLoad(url, _calls(), concurrency=config.concurrency) as load:
        load.wait_for(50)
        start_total, started = load.total, time.monotonic()
        time.sleep(config.seconds)
        done, elapsed = load.total - start_total, time.monotonic() - started
    if load.tally.failures:
        raise BenchError(f"requests failed: {load.tally.failures[:3]}")
    return done / elapsed


def measure(cluster: SwarmCluster, config: MultiNodeConfig) -> tuple[list[float], list[float]]:
    """Requests per second, one node and two nodes, in alternating rounds."""
    one_node: list[float] = []
    two_nodes: list[float] = []
    for round_number in range(config.rounds):
        order = [node_name(2), None] if round_number % 2 == 0 else [None, node_name(2)]
        for hostname in order:
            _place(cluster, hostname)
            (one_node if hostname else two_nodes).append(_rps(cluster.url, config))
    _place(cluster, None)
    return one_node, two_nodes


def result(one_node: list[float], two_nodes: list[float], config: MultiNodeConfig) -> BenchResult:
    one, two = median(one_node), median(two_nodes)
    ratio = two / one
    return BenchResult(
        key="multi_node",
        title=TITLE,
        headline=f"two nodes serve {ratio:.2f}x the requests/s of one ({two:.0f} vs {one:.0f})",
        target=config.target,
        met=None,
        figures=[
            (
                "Requests/s through the proxy, replicas on two nodes / on one (median)",
                f"**{two:.0f} / {one:.0f} = {ratio:.2f}x**",
            ),
            ("Rounds, one node", ", ".join(f"{value:.0f}" for value in one_node)),
            ("Rounds, two nodes", ", ".join(f"{value:.0f}" for value in two_nodes)),
        ],
        notes=[
            f"Load: {config.concurrency} clients back to back through the proxy on the "
            f"manager for {config.seconds:.0f} s per round, cycling through 6 cached "
            "searches and /health.",
            "Three Docker-in-Docker nodes share this machine's 2 cores: spreading adds an "
            "overlay hop and cannot add CPU, so this is the overhead of two nodes, not "
            "their speed-up. On separate machines, each node brings its own cores.",
        ],
        values={"ratio": ratio, "one_node_rps": one, "two_nodes_rps": two},
    )


def run(config: MultiNodeConfig | None = None) -> BenchResult:
    config = config or MultiNodeConfig()
    host = ensure_engine(STATE_ROOT)
    images = build_test_images(host)
    remove_cluster(host)
    try:
        cluster = start_cluster(host, images, say=lambda line: print(f"[cluster] {line}"))
        one_node, two_nodes = measure(cluster, config)
    finally:
        remove_cluster(host)
    return result(one_node, two_nodes, config)
