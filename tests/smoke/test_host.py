"""The deployed stack's host, over SSH with testinfra (after a deploy, in CI).

Needs SMOKE_SSH_HOST (user@address), SMOKE_SSH_KEY_FILE, SMOKE_SSH_KNOWN_HOSTS
(the stack's pinned host key, `[host]:port` off port 22) and SMOKE_ENVIRONMENT
(staging or prod), and SMOKE_SSH_PORT when it is not 22; the deploy workflow
sets them. In the normal suite the same checks run against the
local topology (tests/infra/ops/test_local_stack.py).
"""

from __future__ import annotations

import os
import shlex
from typing import Any

import pytest
import testinfra

from tests.smoke import host_checks

REQUIRED = ("SMOKE_SSH_HOST", "SMOKE_SSH_KEY_FILE", "SMOKE_SSH_KNOWN_HOSTS", "SMOKE_ENVIRONMENT")


@pytest.fixture(scope="module")
def deployed_host() -> Any:
    missing = [name for name in REQUIRED if not os.environ.get(name)]
    if len(missing) == len(REQUIRED):
        pytest.skip("no deployed host to check (SMOKE_SSH_HOST is unset)")
    assert not missing, f"set {', '.join(missing)} too"
    known_hosts = shlex.quote(os.environ["SMOKE_SSH_KNOWN_HOSTS"])
    user, _, address = os.environ["SMOKE_SSH_HOST"].rpartition("@")
    if ":" in address:  # IPv6
        address = f"[{address}]"
    port = os.environ.get("SMOKE_SSH_PORT", "22")
    return testinfra.get_host(
        f"ssh://{user}@{address}:{port}",
        ssh_identity_file=os.environ["SMOKE_SSH_KEY_FILE"],
        # The stack's pinned key only: never trust a key on first use.
        ssh_extra_args=(
            f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={known_hosts} -o BatchMode=yes"
        ),
        timeout=30,
    )


def test_the_topology_runs_healthy_and_hardened(deployed_host: Any) -> None:
    host_checks.check_topology(deployed_host, os.environ["SMOKE_ENVIRONMENT"])


def test_the_server_exposes_only_ssh_and_the_proxy(deployed_host: Any) -> None:
    host_checks.check_server(deployed_host)
