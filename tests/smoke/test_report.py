"""The smoke checks' host report (review M2): what the restricted `smoke` login runs.

The host's report script (infra/components/host.py) runs here with stand-ins
for docker, ss, systemctl and id; the smoke tests' checks then judge its JSON.
It must carry what the checks need and none of a container's settings (its
environment holds the service's secrets), and the checks must refuse a login
that is in the docker group.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.servers import free_port
from tests.smoke import host_checks
from tests.smoke.conftest import deployed_url

ROOT = Path(__file__).resolve().parents[2]

# These judge the checks themselves; after a deploy (SMOKE_BASE_URL), only the checks run.
pytestmark = pytest.mark.skipif(
    deployed_url() is not None, reason="already running against a deployed stack"
)

SECRET = "postgresql://jobsearch_app:S3cret@db.example.com/postgres"


def replica(name: str, **host_config: Any) -> dict[str, Any]:
    return {
        "Name": f"/{name}",
        "Image": "sha256:" + "ab" * 32,
        "Config": {
            "User": "10001:10001",
            "Env": [f"DATABASE_URL={SECRET}", "APP_ENV=production"],
            "Labels": {
                "org.jobsearch.project": "jobsearch",
                "org.jobsearch.environment": "staging",
                "org.jobsearch.role": "api",
                "com.docker.swarm.service.name": "jobsearch-staging-api",
            },
        },
        "State": {"Running": True, "Health": {"Status": "healthy", "Log": [{"Output": SECRET}]}},
        "HostConfig": {
            "ReadonlyRootfs": True,
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges:true"],
            "PortBindings": {},
            **host_config,
        },
        "Mounts": [{"Source": "/srv/jobsearch"}],
    }


def proxy() -> dict[str, Any]:
    document = replica("jobsearch-staging-proxy")
    document["Config"]["User"] = "10002:10002"
    document["Config"]["Labels"]["org.jobsearch.role"] = "proxy"
    return document


SS_OUTPUT = """\
LISTEN 0      4096         0.0.0.0:22        0.0.0.0:*
LISTEN 0      4096            [::]:443          [::]:*
LISTEN 0      4096       127.0.0.1:6379      0.0.0.0:*
LISTEN 0      4096   127.0.0.53%lo:53        0.0.0.0:*
LISTEN 0      4096           [::1]:631          [::]:*
"""


def run_report(tmp_path: Path, documents: list[dict[str, Any]], groups: str) -> dict[str, Any]:
    from infra.components.host import SMOKE_REPORT_SCRIPT

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "inspect.json").write_text(json.dumps(documents))
    stand_ins = {
        "docker": f"""case "$1" in
  ps) printf '%s\\n' {" ".join(str(i) for i in range(len(documents)))} ;;
  inspect) cat {tmp_path}/inspect.json ;;
esac
""",
        "ss": f"cat <<'EOF'\n{SS_OUTPUT}EOF\n",
        "systemctl": 'test "$*" = "is-active --quiet docker"\n',
        "id": f'test "$*" = "-Gn smoke" && echo "{groups}"\n',
    }
    for name, body in stand_ins.items():
        (bin_dir / name).write_text("#!/bin/sh\n" + body)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "report").write_text(SMOKE_REPORT_SCRIPT)
    completed = subprocess.run(
        [sys.executable, str(tmp_path / "report")],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "SUDO_USER": "smoke"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    report: dict[str, Any] = json.loads(completed.stdout)
    return report


def test_the_report_carries_what_the_checks_need_and_no_secret(tmp_path: Path) -> None:
    documents = [replica("jobsearch-staging-api-1"), replica("jobsearch-staging-api-2"), proxy()]

    report = run_report(tmp_path, documents, groups="smoke")

    assert SECRET not in json.dumps(report)
    assert "Env" not in json.dumps(report)
    assert report["caller"] == "smoke"
    assert report["docker_running"] is True
    assert sorted(report["listening"]) == [
        "tcp://0.0.0.0:22",
        "tcp://127.0.0.1:6379",
        "tcp://127.0.0.53:53",
        "tcp://::1:631",
        "tcp://:::443",
    ]
    host_checks.check_report(report, "staging")


def test_the_checks_still_catch_a_replica_that_keeps_its_capabilities(tmp_path: Path) -> None:
    documents = [replica("jobsearch-staging-api-1", CapDrop=[]), proxy()]

    report = run_report(tmp_path, documents, groups="smoke")

    with pytest.raises(AssertionError, match="keeps capabilities"):
        host_checks.check_report(report, "staging")


@pytest.mark.parametrize("group", ["docker", "sudo"])
def test_a_smoke_login_with_root_powers_is_refused(tmp_path: Path, group: str) -> None:
    documents = [replica("jobsearch-staging-api-1"), proxy()]

    report = run_report(tmp_path, documents, groups=f"smoke {group}")

    with pytest.raises(AssertionError, match=f"the smoke login is in the {group} group"):
        host_checks.check_report(report, "staging")


# --- the login itself, against a real sshd ------------------------------------------


def good_report(caller: str) -> dict[str, Any]:
    documents = [replica("jobsearch-staging-api-1"), replica("jobsearch-staging-api-2"), proxy()]
    for document in documents:
        document["Config"].pop("Env")
    return {
        "caller": caller,
        "caller_groups": ["smoke"],
        "docker_running": True,
        "listening": ["tcp://0.0.0.0:22", "tcp://:::443"],
        "containers": documents,
    }


@pytest.fixture
def smoke_sshd(tmp_path: Path) -> Iterator[dict[str, str]]:
    """An sshd on 127.0.0.1 (not port 22) that knows the smoke key by cloud-init's exact line,
    with the report swapped for a stand-in; yields the smoke tests' SMOKE_* environment."""
    from infra.components.host import SMOKE_REPORT
    from tests.infra.pulumi.test_host import cloud_init_document

    sshd = shutil.which("sshd", path="/usr/sbin:/usr/bin")
    if sshd is None:
        pytest.skip("needs openssh-server")
    for name in ("host", "smoke"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / name)],
            check=True,
            timeout=30,
        )
    user = getpass.getuser()
    report = tmp_path / "report"
    report.write_text(f"import json\nprint(json.dumps({good_report(user)!r}))\n")
    document = cloud_init_document(smoke_public_key=(tmp_path / "smoke.pub").read_text().strip())
    [line] = next(u for u in document["users"] if u["name"] == "smoke")["ssh_authorized_keys"]
    assert f'command="sudo -n {SMOKE_REPORT}"' in line
    stand_in = line.replace(f"sudo -n {SMOKE_REPORT}", f"{sys.executable} {report}")
    (tmp_path / "authorized_keys").write_text(stand_in + "\n")
    Path("/run/sshd").mkdir(exist_ok=True)
    port = free_port()
    server = subprocess.Popen(
        [
            sshd, "-D", "-e", "-f", "/dev/null", "-h", str(tmp_path / "host"),
            "-o", f"Port={port}", "-o", "ListenAddress=127.0.0.1", "-o", "PidFile=none",
            "-o", "UsePAM=no", "-o", "PasswordAuthentication=no", "-o", "StrictModes=no",
            "-o", f"AuthorizedKeysFile={tmp_path / 'authorized_keys'}",
            "-o", "PermitRootLogin=prohibit-password",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "sshd did not start"
            time.sleep(0.1)
        host_key = (tmp_path / "host.pub").read_text().split()
        (tmp_path / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
        yield {
            "SMOKE_SSH_HOST": f"{user}@127.0.0.1",
            "SMOKE_SSH_PORT": str(port),
            "SMOKE_SSH_KEY_FILE": str(tmp_path / "smoke"),
            "SMOKE_SSH_KNOWN_HOSTS": str(tmp_path / "known_hosts"),
            "SMOKE_ENVIRONMENT": "staging",
        }
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_host_check_logs_in_pinned_and_gets_only_the_report(
    smoke_sshd: dict[str, str],
) -> None:
    env = {**os.environ, **smoke_sshd, "SSH_AUTH_SOCK": ""}
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "--noconftest", "-p", "no:cacheprovider", "-q",
         "tests/smoke/test_host.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "3 passed" in completed.stdout

    # Whatever the login asks for, it gets the report: the key runs nothing else.
    asked = subprocess.run(
        ["ssh", "-i", smoke_sshd["SMOKE_SSH_KEY_FILE"], "-p", smoke_sshd["SMOKE_SSH_PORT"],
         "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
         "-o", f"UserKnownHostsFile={smoke_sshd['SMOKE_SSH_KNOWN_HOSTS']}",
         smoke_sshd["SMOKE_SSH_HOST"], "id -u; cat /etc/shadow"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert json.loads(asked.stdout)["caller"] == getpass.getuser(), asked.stderr
