"""The `swarm_cluster` fixture (a pytest plugin, registered in tests/conftest.py): the
multi-node swarm of harness/swarm_cluster.py, once per session, removed at its end.

What an interrupted run left is removed at the start.
"""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest
from docker.errors import DockerException

from harness.swarm_cluster import ClusterError, SwarmCluster, remove_cluster, start_cluster
from tests.support.docker import TestImages


@pytest.fixture(scope="session")
def swarm_cluster(
    docker_client: docker.DockerClient, test_images: TestImages
) -> Iterator[SwarmCluster]:
    """Three DinD nodes in one swarm, running the topology with 2 replicas by digest."""

    def say(line: str) -> None:
        print(f"[cluster] {line}", flush=True)

    left = remove_cluster(docker_client)
    if left:
        say(f"removed what an earlier run left: {', '.join(left)}")
    try:
        try:
            cluster = start_cluster(docker_client, test_images, say)
        except (ClusterError, DockerException) as error:
            pytest.fail(f"the multi-node swarm could not be set up here: {error}")
        say(f"cluster ready in {cluster.setup_seconds:.1f}s")
        yield cluster
    finally:
        remove_cluster(docker_client)
