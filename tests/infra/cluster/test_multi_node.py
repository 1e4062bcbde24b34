"""A real multi-node swarm on this machine, under load through the proxy.

Three Docker-in-Docker nodes (harness/swarm_cluster.py): node 1 the
manager (proxy, Redis, Postgres, the job sources' stand-ins), two workers; the API's
2 replicas spread over the nodes, every image pulled by digest from a local
registry. The load is searches (served from the stand-ins and the cache on node 1,
over the overlay) and health checks, sent to the proxy on node 1.

The tests run in file order and each leaves the cluster whole: a drained node
is made active again, a killed node is started again and rejoins.
Every figure is printed (`pytest -s`) for the closing note.
"""

from __future__ import annotations

import time

import pytest

from harness.background import BackgroundLoad
from harness.load import Call
from harness.swarm_cluster import SwarmCluster, node_name

pytestmark = pytest.mark.docker

CONCURRENCY = 6
MOVE_WITHIN_SECONDS = 120
# Losing a node: the manager calls it down after missed heartbeats (5 s period),
# then starts its tasks elsewhere; a new replica counts once healthy.
WHOLE_WITHIN_SECONDS = 90
# A hung request to the lost node fails at the client's timeout.
CLIENT_TIMEOUT_SECONDS = 20
KILL_FAILURE_BOUND = 4 * CONCURRENCY


def _calls() -> list[Call]:
    searches = [
        Call("POST", "/api/jobs/jsearch", {"jobTitle": f"cluster drill {number}"})
        for number in range(6)
    ]
    return [*searches, Call("GET", "/health")]


def _load(cluster: SwarmCluster) -> BackgroundLoad:
    return BackgroundLoad(
        cluster.url,
        _calls(),
        concurrency=CONCURRENCY,
        resend=True,
        max_seconds=280,
        timeout=CLIENT_TIMEOUT_SECONDS,
    )


def _worker_with_replica(cluster: SwarmCluster) -> str:
    manager = node_name(1)
    workers = [hostname for hostname in cluster.api_hostnames() if hostname != manager]
    assert workers, f"no replica on a worker: {cluster.api_hostnames()}"
    return workers[0]


def _wait_whole(cluster: SwarmCluster, without: str, timeout: float) -> float:
    """Seconds until 2 replicas run on up nodes, none of them on `without`."""
    started = time.monotonic()
    while True:
        hostnames = cluster.api_hostnames()
        if len(hostnames) == 2 and without not in hostnames:
            return time.monotonic() - started
        assert time.monotonic() - started < timeout, (
            f"not whole within {timeout}s: replicas on {hostnames}, "
            f"nodes {cluster.node_states()}, tasks {cluster.runner.tasks('api')}"
        )
        time.sleep(0.25)


def test_replicas_run_on_at_least_two_nodes(swarm_cluster: SwarmCluster) -> None:
    cluster = swarm_cluster
    hostnames = cluster.api_hostnames()
    images = {task.image for task in cluster.running_api()}
    with _load(cluster) as load:
        load.wait_for(300)
    tally = load.tally
    print(
        f"cluster: set up in {cluster.setup_seconds:.1f}s; nodes {cluster.node_states()}; "
        f"replicas on {hostnames}; {tally.total} requests through the proxy, "
        f"{len(tally.failures)} failed"
    )
    assert len(cluster.node_states()) == 3
    assert len(hostnames) == 2
    assert len(set(hostnames)) == 2, "the 2 replicas share a node"
    # Every node pulled the same image by digest, as prod does.
    assert images == {cluster.images.service}
    assert "@sha256:" in cluster.images.service
    assert tally.failures == []


def test_draining_a_node_moves_its_replicas_and_fails_no_request(
    swarm_cluster: SwarmCluster,
) -> None:
    cluster = swarm_cluster
    victim = _worker_with_replica(cluster)
    before = cluster.api_hostnames()
    try:
        with _load(cluster) as load:
            load.wait_for(100)
            at_drain = load.total
            cluster.set_availability(victim, "drain")
            moved_after = _wait_whole(cluster, victim, MOVE_WITHIN_SECONDS)
            during = load.total - at_drain
            load.wait_for(load.total + 200)
        after = cluster.api_hostnames()
    finally:
        cluster.set_availability(victim, "active")
    tally = load.tally
    print(
        f"drain of {victim}: replicas {before} -> {after}, moved in {moved_after:.1f}s; "
        f"{tally.total} requests ({during} during the move), {len(tally.failures)} failed, "
        f"{len(tally.resent)} resent"
    )
    assert during > 0, "the load ran while the replica moved"
    assert victim not in after
    assert len(set(after)) == 2, "the replicas still spread over 2 nodes"
    assert tally.failures == []


def test_rollout_across_nodes_fails_no_request(swarm_cluster: SwarmCluster) -> None:
    cluster = swarm_cluster
    before = cluster.api_hostnames()
    started = time.monotonic()
    with _load(cluster) as load:
        load.wait_for(100)
        at_start = load.total
        cluster.runner.rollout(cluster.images.variant)
        took = time.monotonic() - started
        during = load.total - at_start
        load.wait_for(load.total + 200)
    tally = load.tally
    after = cluster.api_hostnames()
    images = {task.image for task in cluster.running_api()}
    print(
        f"rollout across nodes: replicas {before} -> {after} in {took:.1f}s; "
        f"{tally.total} requests ({during} during the rollout), {len(tally.failures)} failed, "
        f"{len(tally.resent)} resent"
    )
    assert images == {cluster.images.variant}
    assert len(set(after)) >= 2
    assert during > 0
    assert tally.failures == []
    assert cluster.runner.update_status("api")["state"] == "completed"


def test_killing_a_worker_node(swarm_cluster: SwarmCluster) -> None:
    """The node's container is killed outright (SIGKILL, as a machine that loses
    power): its requests in flight are lost, and the engine restores 2 replicas."""
    cluster = swarm_cluster
    victim = _worker_with_replica(cluster)
    container = cluster.node_container(victim)
    before = cluster.api_hostnames()
    try:
        with _load(cluster) as load:
            load.wait_for(100)
            container.kill()
            at_kill = load.total
            whole_after = _wait_whole(cluster, victim, WHOLE_WITHIN_SECONDS)
            failed_when_whole = load.failed
            during = load.total - at_kill
            load.wait_for(load.total + 300)
        after = cluster.api_hostnames()
        states = cluster.node_states()
    finally:
        container.start()
    rejoin_started = time.monotonic()
    cluster.wait_for_nodes()
    rejoined = time.monotonic() - rejoin_started
    tally = load.tally
    print(
        f"kill of {victim}: replicas {before} -> {after}; whole again (2 running) after "
        f"{whole_after:.1f}s; {tally.total} requests ({during} until whole), "
        f"{len(tally.failures)} failed ({failed_when_whole} when whole), "
        f"statuses {dict(tally.statuses)}; the node was seen as {states[victim]}; "
        f"restarted, it rejoined in {rejoined:.1f}s; failures: {tally.failures[:8]}"
    )
    assert whole_after < WHOLE_WITHIN_SECONDS
    # A POST sent to the lost node is never replayed (a paid call may have been made):
    # what was in flight fails, and so does one more each time the proxy tries the
    # dead address again (every fail_duration, 5 s) until the swarm's DNS drops it.
    assert len(tally.failures) <= KILL_FAILURE_BOUND, tally.failures
    assert tally.statuses.get(500, 0) == 0
    assert tally.statuses[200] >= 300
