"""The Docker engine and the images that the container tests run.

No registry is reachable here, so every image is built on this machine: the
Debian base (debootstrap + docker import) and the proxy, Redis and Postgres
stand-ins come from infra/local/images.py and are cached by a hash of their
recipe; the service image is built from service/Dockerfile on that base, and
the job sources' stand-ins (infra/standins) on it, as `ops local up` builds
them; the test-only images (a broken service, a second service image) are
small layers on top of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import docker
import pytest

from infra.local.engine import ensure_engine
from infra.local.images import (
    build_from_files,
    build_service_image,
    build_standins_image,
    image_set,
)
from infra.local.state import STATE_ROOT

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
    standins: str  # the job sources' stand-ins (infra/standins)
    # Same app, another image id: something to roll out and back.
    variant: str
    # Starts, but never answers /health: a rollout of it must change nothing.
    broken: str

    @property
    def fakes(self) -> str:
        """The stand-ins' image, by the name the DinD cluster (swarm_cluster.py) uses."""
        return self.standins


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
    standins = build_standins_image(client, SERVICE_TAG)
    variant = build_from_files(
        client,
        f'FROM {SERVICE_TAG}\nLABEL org.jobsearch.test.variant="b"\n',
        "jobsearch-api:test-variant",
    )
    broken = build_from_files(
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
        standins=standins,
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
