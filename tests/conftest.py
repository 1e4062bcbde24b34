"""Fixtures shared by the whole suite: fake upstreams, a migrated database, the service."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness.machine import ensure_postgres, ensure_redis
from harness.postgres import (
    PrivateCluster,
    create_supabase_roles,
    private_cluster,
    scratch_database,
    service_login_url,
)
from harness.servers import free_port, serve_in_thread
from infra import migrations
from infra.standins.app import StandinState, build_app
from jobsearch.main import create_app
from jobsearch.settings import Settings
from tests.support.settings import service_settings

# Fixtures shared across directories, registered once so that session scope means once.
pytest_plugins = (
    "tests.support.docker",
    "tests.support.local_topology",
    "tests.support.swarm_cluster",
)


def pytest_sessionstart(session: pytest.Session) -> None:
    ensure_postgres()
    ensure_redis()


@pytest.fixture(scope="session")
def fake_upstream_server() -> Iterator[tuple[StandinState, str]]:
    state = StandinState(listings="generated")
    with serve_in_thread(build_app(state), lifespan="off") as url:
        yield state, url


@pytest.fixture
def fakes(fake_upstream_server: tuple[StandinState, str]) -> StandinState:
    state, _ = fake_upstream_server
    state.reset()
    return state


@pytest.fixture
def fakes_url(fake_upstream_server: tuple[StandinState, str]) -> str:
    return fake_upstream_server[1]


@pytest.fixture(scope="session")
def migrated_database() -> Iterator[str]:
    """Admin URL of a fresh database with every migration applied."""
    with scratch_database() as admin_url:
        migrations.apply(admin_url)
        yield admin_url


@pytest.fixture
def app_database_url(migrated_database: str) -> str:
    """The service's least-privilege login to an emptied cache."""
    return service_login_url(migrated_database, empty_cache=True)


@pytest.fixture
def make_settings(fakes_url: str, app_database_url: str) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        return service_settings(fakes_url, **{"database_url": app_database_url, **overrides})

    return build


ServiceRunner = Callable[..., contextlib.AbstractContextManager[str]]


@pytest.fixture
def run_service(make_settings: Callable[..., Settings]) -> ServiceRunner:
    """`with run_service(**settings) as url:` serves the app on a real socket."""

    @contextlib.contextmanager
    def run(**overrides: Any) -> Iterator[str]:
        with serve_in_thread(create_app(make_settings(**overrides))) as url:
            yield url

    return run


@pytest.fixture
def service_url(run_service: ServiceRunner) -> Iterator[str]:
    with run_service() as url:
        yield url


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    """A migrated Postgres of the module's own, which its tests may stop and start."""
    with private_cluster(free_port()) as running:
        create_supabase_roles(running.admin_url)
        migrations.apply(running.admin_url)
        yield running
