"""The deployed stack's host, over SSH as the restricted `smoke` user (after a deploy, in CI).

The smoke login is not the deploy user (whose docker group makes it root on the
host): its key runs one command, the host's report (infra/components/host.py),
whatever is asked, and the checks judge that report (tests/smoke/host_checks.py).

Needs SMOKE_SSH_HOST (smoke@address), SMOKE_SSH_KEY_FILE, SMOKE_SSH_KNOWN_HOSTS
(the stack's pinned host key, `[host]:port` off port 22) and SMOKE_ENVIRONMENT
(staging or prod), and SMOKE_SSH_PORT when it is not 22; the deploy workflow
sets them. In the normal suite the same checks run against the local topology
(tests/infra/ops/test_local_stack.py) and on a stand-in report
(tests/smoke/test_report.py).
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from tests.smoke import host_checks

REQUIRED = ("SMOKE_SSH_HOST", "SMOKE_SSH_KEY_FILE", "SMOKE_SSH_KNOWN_HOSTS", "SMOKE_ENVIRONMENT")


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    missing = [name for name in REQUIRED if not os.environ.get(name)]
    if len(missing) == len(REQUIRED):
        pytest.skip("no deployed host to check (SMOKE_SSH_HOST is unset)")
    assert not missing, f"set {', '.join(missing)} too"
    command = ["ssh", "-i", os.environ["SMOKE_SSH_KEY_FILE"]]
    command += ["-p", os.environ.get("SMOKE_SSH_PORT", "22")]
    # The stack's pinned key only: never trust a key on first use.
    command += ["-o", "StrictHostKeyChecking=yes"]
    command += ["-o", f"UserKnownHostsFile={os.environ['SMOKE_SSH_KNOWN_HOSTS']}"]
    command += ["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=30"]
    command += ["--", os.environ["SMOKE_SSH_HOST"]]
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    found: dict[str, Any] = json.loads(completed.stdout)
    return found


def test_the_smoke_login_has_no_root_powers(report: dict[str, Any]) -> None:
    user = os.environ["SMOKE_SSH_HOST"].rpartition("@")[0]
    assert report["caller"] == user
    for group in host_checks.ROOT_EQUIVALENT_GROUPS:
        assert group not in report["caller_groups"], group


def test_the_topology_runs_healthy_and_hardened(report: dict[str, Any]) -> None:
    environment = os.environ["SMOKE_ENVIRONMENT"]
    host_checks.check_containers(
        host_checks.project_containers(report["containers"], environment), environment
    )


def test_the_server_exposes_only_ssh_and_the_proxy(report: dict[str, Any]) -> None:
    host_checks.check_listening(report["docker_running"], report["listening"])
