"""service/Dockerfile: what the image holds, and what it must not."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import docker
import pytest

from infra.local.images import oci_build_args
from infra.standins import JSEARCH_KEY, THEIRSTACK_KEY
from infra.topology import SERVICE_SECRET_SETTINGS
from tests.support.docker import EXPECTED_PYTHON, TestImages

pytestmark = pytest.mark.docker

# What our layers may add to the base, in MB: a generous bound on the
# dependencies and bytecode (about 50 MB when written), not a target.
MAX_ADDED_MB = 80


def _inspect(client: docker.DockerClient, image: str) -> dict[str, Any]:
    attrs: dict[str, Any] = client.images.get(image).attrs
    return attrs


def _run_python(client: docker.DockerClient, image: str, code: str, user: str = "") -> str:
    """Run Python in the image read-only, as the image's user unless told otherwise."""
    output = client.containers.run(
        image,
        user=user,
        entrypoint=["/opt/venv/bin/python", "-c", code],
        read_only=True,
        tmpfs={"/tmp": "rw,noexec,nosuid,size=16m"},
        network_mode="none",
        remove=True,
    )
    assert isinstance(output, bytes)
    return output.decode().strip()


def test_no_secret_in_history_or_environment_defaults(
    docker_client: docker.DockerClient, test_images: TestImages
) -> None:
    history = subprocess.run(
        ["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", test_images.service],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "COPY" in history or "copy" in history  # the real history, not an empty string
    config = _inspect(docker_client, test_images.service)["Config"]
    environment = {item.split("=", 1)[0]: item.split("=", 1)[1] for item in config["Env"]}
    for name in SERVICE_SECRET_SETTINGS:
        assert name not in history, f"{name} appears in the image history"
        assert name not in environment, f"{name} has a default in the image"
    for value in (JSEARCH_KEY, THEIRSTACK_KEY):
        assert value not in history
        assert value not in json.dumps(config)
    assert environment["HOST"] == "0.0.0.0"  # noqa: S104 - the default inside the container
    assert environment["PORT"] == "8000"


def test_runs_as_its_own_user_with_exec_entrypoint_and_health_check(
    docker_client: docker.DockerClient, test_images: TestImages
) -> None:
    config = _inspect(docker_client, test_images.service)["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["/opt/venv/bin/python", "-m", "jobsearch"]
    assert config["Healthcheck"]["Test"] == [
        "CMD",
        "/opt/venv/bin/python",
        "-m",
        "jobsearch.healthcheck",
    ]


def test_oci_labels_name_source_revision_and_creation(
    docker_client: docker.DockerClient, test_images: TestImages
) -> None:
    labels = _inspect(docker_client, test_images.service)["Config"]["Labels"]
    expected = oci_build_args()
    assert labels["org.opencontainers.image.source"] == expected["SOURCE"]
    assert labels["org.opencontainers.image.revision"] == expected["REVISION"]
    assert labels["org.opencontainers.image.created"] == expected["CREATED"]
    assert len(expected["REVISION"]) == 40  # a real commit, not "unknown"


def test_final_stage_has_no_compiler_pip_cache_or_tests(
    docker_client: docker.DockerClient, test_images: TestImages
) -> None:
    report = _run_python(
        docker_client,
        test_images.service,
        "import importlib.util, json, pathlib, shutil, sys\n"
        "print(json.dumps({\n"
        "  'compilers': [c for c in ('gcc', 'cc', 'clang', 'make') if shutil.which(c)],\n"
        "  'pip': importlib.util.find_spec('pip') is not None,\n"
        "  'caches': [str(p) for p in (pathlib.Path('/root/.cache'), pathlib.Path('/tmp/pip'))"
        " if p.exists()],\n"
        "  'tests': [str(p) for p in pathlib.Path('/app').rglob('test*')],\n"
        "  'bytecode': len(list(pathlib.Path('/app/jobsearch').rglob('*.pyc'))),\n"
        "  'python': '%d.%d' % sys.version_info[:2],\n"
        "  'prefix': sys.prefix,\n"
        "}))",
        # root, to see into /root: a cache left there would be unreadable otherwise
        user="0:0",
    )
    found = json.loads(report)
    assert found["compilers"] == []
    assert found["pip"] is False
    assert found["caches"] == []
    assert found["tests"] == []
    assert found["bytecode"] > 10, "the app's bytecode is compiled at build time"
    assert found["python"] == EXPECTED_PYTHON
    assert found["prefix"] == "/opt/venv"


def test_the_layers_we_add_stay_small(
    docker_client: docker.DockerClient, test_images: TestImages
) -> None:
    added = (
        _inspect(docker_client, test_images.service)["Size"]
        - _inspect(docker_client, test_images.base)["Size"]
    )
    assert 0 < added < MAX_ADDED_MB * 1_000_000, f"our layers add {added / 1e6:.1f} MB"
