"""The smoke checks' host report (review M2): what the restricted `smoke` login runs.

The host's report script (infra/components/host.py) runs here with stand-ins
for docker, ss, systemctl and id; the smoke tests' checks then judge its JSON.
It must carry what the checks need and none of a container's settings (its
environment holds the service's secrets), and the checks must refuse a login
that is in the docker group.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.smoke import host_checks

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
