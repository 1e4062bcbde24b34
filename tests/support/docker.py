"""The Docker engine and the images the container tests run (built by harness/images.py)."""

from __future__ import annotations

import docker
import pytest

from harness.images import EXPECTED_PYTHON, SERVICE_TAG, TestImages, build_test_images
from infra.local.engine import ensure_engine
from infra.local.state import STATE_ROOT

__all__ = ["EXPECTED_PYTHON", "SERVICE_TAG", "TestImages", "build_test_images"]


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    """A running engine: installs docker.io and starts dockerd when missing."""
    return ensure_engine(STATE_ROOT)


@pytest.fixture(scope="session")
def test_images(docker_client: docker.DockerClient) -> TestImages:
    return build_test_images(docker_client)
