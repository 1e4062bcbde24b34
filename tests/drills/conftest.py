"""Fault drills: the service under load while something breaks.

The container drill uses the suite's local topology instance (the fixtures of
tests/support/local_topology.py, registered in tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from harness.postgres import service_login_url
from harness.servers import serve_in_thread
from infra.standins.app import StandinState
from jobsearch.main import create_app
from tests.support.settings import service_settings


@dataclass
class SharedService:
    url: str
    fakes: StandinState


@pytest.fixture(scope="module")
def shared_service(
    fake_upstream_server: tuple[StandinState, str], migrated_database: str
) -> Iterator[SharedService]:
    """One service for a whole module of short drills (each test resets the fakes)."""
    state, fakes_url = fake_upstream_server
    settings = service_settings(
        fakes_url, database_url=service_login_url(migrated_database), rate_limit="100000/minute"
    )
    with serve_in_thread(create_app(settings)) as url:
        yield SharedService(url, state)


@pytest.fixture
def shared(shared_service: SharedService) -> SharedService:
    shared_service.fakes.reset()
    return shared_service
