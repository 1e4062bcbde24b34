"""Fault drills: the service under load while something breaks.

The container drill uses the suite's local topology instance; its fixtures are
defined once in tests/infra/local/conftest.py and re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from jobsearch.main import create_app
from jobsearch.settings import Settings
from tests.fakes.upstreams import JSEARCH_KEY, THEIRSTACK_KEY, FakeUpstreams
from tests.infra.local.conftest import local_topology, topology
from tests.support.docker import docker_client, test_images
from tests.support.postgres import database_name, url_for
from tests.support.servers import serve_in_thread

__all__ = ["docker_client", "local_topology", "test_images", "topology"]


@dataclass
class SharedService:
    url: str
    fakes: FakeUpstreams


@pytest.fixture(scope="module")
def shared_service(
    fake_upstream_server: tuple[FakeUpstreams, str], migrated_database: str
) -> Iterator[SharedService]:
    """One service for a whole module of short drills (each test resets the fakes)."""
    state, fakes_url = fake_upstream_server
    with psycopg.connect(migrated_database, autocommit=True) as connection:
        connection.execute("alter role jobsearch_app with login")
    settings = Settings.model_validate(
        {
            "rapid_api_key": JSEARCH_KEY,
            "theirstack_api_key": THEIRSTACK_KEY,
            "jsearch_base_url": fakes_url,
            "theirstack_base_url": fakes_url,
            "database_url": url_for(database_name(migrated_database), user="jobsearch_app"),
            "upstream_timeout_seconds": 1.0,
            "rate_limit": "100000/minute",
        }
    )
    with serve_in_thread(create_app(settings)) as url:
        yield SharedService(url, state)


@pytest.fixture
def shared(shared_service: SharedService) -> SharedService:
    shared_service.fakes.reset()
    return shared_service
