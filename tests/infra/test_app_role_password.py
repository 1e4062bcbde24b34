"""The service role's password reaches the server only as a SCRAM verifier (review M3).

On a private cluster of the test's own, with every statement logged and password
authentication required for the service's role.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest

from harness.postgres import PrivateCluster, create_supabase_roles, private_cluster
from harness.servers import free_port
from infra import migrations

PASSWORD = "Plain-Text-Must-Not-Travel/7f3a9c"


@pytest.fixture(scope="module")
def logged_cluster() -> Iterator[PrivateCluster]:
    with private_cluster(free_port()) as running:
        create_supabase_roles(running.admin_url)
        migrations.apply(running.admin_url)
        hba = running.data_dir / "pg_hba.conf"
        hba.write_text("host all jobsearch_app 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        with psycopg.connect(running.admin_url, autocommit=True) as connection:
            connection.execute("alter system set log_statement = 'all'")
            connection.execute("select pg_reload_conf()")
        yield running


def _server_log(cluster: PrivateCluster) -> str:
    return (cluster.data_dir.parent / "server.log").read_text(errors="replace")


def _app_login(cluster: PrivateCluster, password: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host="127.0.0.1",
        port=cluster.port,
        dbname="postgres",
        user="jobsearch_app",
        password=password,
        connect_timeout=5,
    )


def test_the_password_is_never_in_a_statement(logged_cluster: PrivateCluster) -> None:
    migrations.set_app_role_password(logged_cluster.admin_url, PASSWORD)
    deadline = time.monotonic() + 5
    while "alter role" not in _server_log(logged_cluster).lower():
        assert time.monotonic() < deadline, "the statement was not logged at all"
        time.sleep(0.1)
    log = _server_log(logged_cluster)
    assert "SCRAM-SHA-256$" in log
    assert PASSWORD not in log


def test_the_verifier_lets_the_service_role_in_with_its_password_only(
    logged_cluster: PrivateCluster,
) -> None:
    migrations.set_app_role_password(logged_cluster.admin_url, PASSWORD)
    with _app_login(logged_cluster, PASSWORD) as connection:
        assert connection.execute("select current_user").fetchone() == ("jobsearch_app",)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _app_login(logged_cluster, PASSWORD + "x").close()
