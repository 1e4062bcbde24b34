"""The "test" instance: the local topology the container tests and bench/rollout.py share.

It never touches a developer's `make local`: its own names (jobsearch-test-*),
subnet, ports and state directory; both job sources are its stand-ins.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import docker

from harness.images import TestImages
from harness.servers import free_port
from infra.local.runner import LocalRunner
from infra.local.state import LocalConfig, LocalState
from infra.standins import JSEARCH_KEY, SOURCES, THEIRSTACK_KEY

TEST_SUBNET_OCTET = 232


def prepare_test_instance(
    client: docker.DockerClient,
    images: TestImages,
    *,
    settings: Mapping[str, str],
    say: Callable[[str], None],
) -> LocalRunner:
    """The "test" instance's runner, configured, with what an interrupted run left removed.

    Shared by the suite (tests/support/local_topology.py) and bench/rollout.py;
    `settings` are the service's (both job sources are the topology's stand-ins).
    """
    state = LocalState("test")
    config = LocalConfig(
        environment="test",
        image_source="debian",
        http_port=free_port(),
        postgres_port=free_port(),
        subnet_octet=TEST_SUBNET_OCTET,
        replicas=2,
        workers=2,
        images=images.runtime,
        sample_sources=SOURCES,
        settings={"LOG_LEVEL": "WARNING", **settings},
    )
    runner = LocalRunner(client, state, config, say=say)
    runner.down(volumes=True)
    state.prepare()
    state.save_config(config)
    state.set_api_keys({"RAPID_API_KEY": JSEARCH_KEY, "THEIRSTACK_API_KEY": THEIRSTACK_KEY})
    return runner
