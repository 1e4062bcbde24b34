"""Where the smoke tests point.

After a deploy, CI sets SMOKE_BASE_URL to the stack's public URL (and the
SMOKE_SSH_* variables for the host check); the same tests then judge the
deployed service. Without it, they run in the normal suite against the
service served locally with the fake upstreams, so that they are known to
pass on a good build and are kept working.
"""

from __future__ import annotations

import os

import pytest

SMOKE_BASE_URL = "SMOKE_BASE_URL"


def deployed_url() -> str | None:
    value = os.environ.get(SMOKE_BASE_URL, "").strip()
    return value.rstrip("/") or None


@pytest.fixture
def smoke_url(request: pytest.FixtureRequest) -> str:
    deployed = deployed_url()
    if deployed is not None:
        return deployed
    local: str = request.getfixturevalue("service_url")
    return local
