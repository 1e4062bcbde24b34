"""The images the container tests and the benchmarks run, all built on this machine.

No registry is reachable here, so every image is built locally: the Debian base
(debootstrap + docker import) and the proxy, Redis and Postgres images come from
infra/local/images.py and are cached by a hash of their recipe; the service image
is built from service/Dockerfile on that base, and the job sources' stand-ins
(infra/standins) on it, as `ops local up` builds them; the test-only images (a
broken service, a second service image) are small layers on top of it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import docker

from infra.local.images import (
    build_from_files,
    build_service_image,
    build_standins_image,
    debian_base,
    runtime_images,
)
from infra.local.state import STATE_ROOT
from infra.topology import Images

SERVICE_TAG = "jobsearch-api:test"
# The local base is Debian bookworm, whose python3 is 3.11, like the official
# base the Dockerfile defaults to (tests/test_one_python.py keeps them equal).
EXPECTED_PYTHON = "3.11"


@dataclass(frozen=True)
class TestImages:
    __test__ = False  # not a test class, whatever pytest thinks of the name

    base: str  # the Debian base the others are built on
    # What the topology runs: the one record of images (infra.topology.Images).
    runtime: Images
    # Same app, another image id: something to roll out and back.
    variant: str
    # Starts, but never answers /health: a rollout of it must change nothing.
    broken: str

    @property
    def service(self) -> str:
        """The service image (an image id): what the suite deploys, and rolls back to."""
        return self.runtime.service


# Built once per process: the suite's session fixture and `make bench` both ask.
_built: list[TestImages] = []


def build_test_images(client: docker.DockerClient) -> TestImages:
    if not _built:
        _built.append(_build_test_images(client))
    return _built[0]


def _build_test_images(client: docker.DockerClient) -> TestImages:
    base = debian_base(client, STATE_ROOT / "build")
    images = runtime_images(client, "debian", STATE_ROOT / "build")
    service = build_service_image(client, base_image=base, tag=SERVICE_TAG)
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
        base=base,
        runtime=replace(images, service=service, standin=standins),
        variant=variant,
        broken=broken,
    )
