"""The Docker engine and the images that the container tests run.

No registry is reachable here, so every image is built on this machine: the
Debian base (debootstrap + docker import) and the proxy, Redis and Postgres
stand-ins come from infra/local/images.py and are cached by a hash of their
recipe; the service image is built from service/Dockerfile on that base; the
test-only images (fake upstreams, a broken service, a second service image)
are small layers on top of it.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from infra.local.engine import ensure_engine
from infra.local.images import build_service_image, image_set
from infra.local.state import STATE_ROOT

REPO_ROOT = Path(__file__).resolve().parents[2]
FAKES_DOCKERFILE = REPO_ROOT / "tests" / "images" / "fakes" / "Dockerfile"
FAKES_SOURCE = REPO_ROOT / "tests" / "fakes"

SERVICE_TAG = "jobsearch-api:test"
# The local base is Debian bookworm, whose python3 is 3.11, like the official
# base the Dockerfile defaults to (tests/test_one_python.py keeps them equal).
EXPECTED_PYTHON = "3.11"


@dataclass(frozen=True)
class TestImages:
    __test__ = False  # not a test class, whatever pytest thinks of the name

    base: str
    proxy: str
    redis: str
    postgres: str
    service: str  # image id
    fakes: str
    # Same app, another image id: something to roll out and back.
    variant: str
    # Starts, but never answers /health: a rollout of it must change nothing.
    broken: str


def build_from_text(
    client: docker.DockerClient,
    dockerfile: str,
    tag: str,
    files: Mapping[str, bytes] | None = None,
    buildargs: Mapping[str, str] | None = None,
) -> str:
    """Build an image from a Dockerfile given as text (and a few files); returns its id."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, content in {"Dockerfile": dockerfile.encode(), **(files or {})}.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(content))
    buffer.seek(0)
    image, _ = client.images.build(
        fileobj=buffer,
        custom_context=True,
        tag=tag,
        buildargs=dict(buildargs or {}),
        rm=True,
        forcerm=True,
        pull=False,
    )
    return str(image.id)


# Built once per process: the suite's session fixture and `make bench` both ask.
_built: list[TestImages] = []


def build_test_images(client: docker.DockerClient) -> TestImages:
    if not _built:
        _built.append(_build_test_images(client))
    return _built[0]


def _build_test_images(client: docker.DockerClient) -> TestImages:
    images = image_set(client, "debian", STATE_ROOT / "build")
    assert images.base is not None
    service = build_service_image(client, base_image=images.base, tag=SERVICE_TAG)
    fakes_files = {
        f"fakes/{path.name}": path.read_bytes() for path in sorted(FAKES_SOURCE.glob("*.py"))
    }
    fakes = build_from_text(
        client,
        FAKES_DOCKERFILE.read_text(),
        "jobsearch-local/fakes:test",
        fakes_files,
        buildargs={"SERVICE_IMAGE": SERVICE_TAG},
    )
    variant = build_from_text(
        client,
        f'FROM {SERVICE_TAG}\nLABEL org.jobsearch.test.variant="b"\n',
        "jobsearch-api:test-variant",
    )
    broken = build_from_text(
        client,
        f'FROM {SERVICE_TAG}\nENTRYPOINT ["/opt/venv/bin/python", "-c", '
        "\"import time; print('serving nothing', flush=True); time.sleep(3600)\"]\n",
        "jobsearch-api:test-broken",
    )
    return TestImages(
        base=images.base,
        proxy=images.proxy,
        redis=images.redis,
        postgres=images.postgres,
        service=service,
        fakes=fakes,
        variant=variant,
        broken=broken,
    )


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    """A running engine: installs docker.io and starts dockerd when missing."""
    return ensure_engine(STATE_ROOT)


@pytest.fixture(scope="session")
def test_images(docker_client: docker.DockerClient) -> TestImages:
    return build_test_images(docker_client)
