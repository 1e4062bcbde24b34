"""The program's graphs for each stack, computed once per session, in parallel.

Each run is a fresh process (tests/infra/pulumi/harness.py) with the
committed stack file, the values an organization sets once, and fake secrets.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.infra.pulumi.graph import Graph, run_program
from tests.infra.pulumi.stack_config import FAKE_SECRETS, StackInput, committed_stack, dev_stack

EXISTING_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExistingServerHostKey"
REGISTRY_USER = "deploy-bot"
SMOKE_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeSmokeKeyForTestsOnly smoke"
# prod on three servers it does not create: the first a manager, two workers.
EXISTING_SERVERS = (
    ("198.51.100.7", EXISTING_HOST_KEY, ""),
    ("198.51.100.8", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExistingServerHostKey2", "worker"),
    ("198.51.100.9", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExistingServerHostKey3", "worker"),
)


def variants() -> dict[str, StackInput]:
    # prod on a server it does not create, with the emergency image override from
    # a private registry, its proxy answering HTTPS on another port.
    existing = committed_stack("prod").with_values(
        hostMode="existing",
        httpsPort=8443,
        servers=[" ".join(filter(None, (a, k, r))) for a, k, r in EXISTING_SERVERS],
        imageRef="registry.example.com/acme/jobsearch-api@sha256:" + "9f" * 32,
        registryUsername=REGISTRY_USER,
    )
    existing.secrets["registryPassword"] = FAKE_SECRETS["registryPassword"]
    return {
        "staging": committed_stack("staging"),
        "prod": committed_stack("prod"),
        "prod-existing": existing,
        "dev": dev_stack(),
        # staging grown to two VMs, then to three with fewer replicas than nodes.
        "staging-2": committed_stack("staging").with_values(nodes=2),
        "staging-3": committed_stack("staging").with_values(
            nodes=3, replicas=2, smokeSshPublicKey=SMOKE_PUBLIC_KEY
        ),
    }


@pytest.fixture(scope="session")
def graphs() -> Mapping[str, Graph]:
    runs = variants()
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(runs, pool.map(run_program, runs.values()), strict=True))
    for name, graph in results.items():
        assert graph.error is None, f"{name}: {graph.error['traceback'] if graph.error else ''}"
    return results


@pytest.fixture(scope="session")
def staging(graphs: Mapping[str, Graph]) -> Graph:
    return graphs["staging"]


@pytest.fixture(scope="session")
def prod(graphs: Mapping[str, Graph]) -> Graph:
    return graphs["prod"]
