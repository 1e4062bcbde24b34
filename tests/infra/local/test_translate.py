"""container_create_kwargs: the topology's words become the engine's, none lost."""

from __future__ import annotations

import copy
from typing import Any, cast

import docker.models.containers

from infra.local.translate import API_VERSION, container_create_kwargs
from infra.topology import Images, Topology, TopologySpec, describe

SECRETS = {
    "RAPID_API_KEY": "rapid-secret",
    "DATABASE_URL": "postgresql://jobsearch_app:pw@postgres:5432/jobsearch",
    "POSTGRES_PASSWORD": "pg-secret",
}


def _topology() -> Topology:
    return describe(
        TopologySpec(
            environment="test",
            images=Images(service="jobsearch-api:test"),
            http_port=18080,
            bind_address="127.0.0.1",
            state_dir="/state",
            local_datastores=True,
            postgres_host_port=15432,
            settings={"LOG_LEVEL": "WARNING"},
        )
    )


def _engine_arguments(kwargs: dict[str, Any]) -> dict[str, Any]:
    """What docker-py would send: its own conversion, as `create_container` uses it."""
    arguments = {key: value for key, value in kwargs.items() if key != "stop_timeout"}
    arguments["version"] = API_VERSION
    convert = cast(Any, docker.models.containers)._create_container_args
    result: dict[str, Any] = convert(arguments)
    return result


def test_replica_gets_its_settings_and_only_its_own_secrets() -> None:
    replica = _topology().replicas("7")[0]
    kwargs = container_create_kwargs(replica, SECRETS, network="jobsearch-test-net")
    environment = kwargs["environment"]
    assert environment["RAPID_API_KEY"] == "rapid-secret"
    assert environment["DATABASE_URL"].startswith("postgresql://jobsearch_app:")
    assert "POSTGRES_PASSWORD" not in environment  # not a secret the service names
    assert "THEIRSTACK_API_KEY" not in environment  # absent: the source stays off
    assert environment["LOG_LEVEL"] == "WARNING"
    assert environment["PORT"] == "8000"
    assert kwargs["name"] == "jobsearch-test-api-7-1"
    assert kwargs["user"] == "10001:10001"
    assert kwargs["stop_timeout"] == replica.stop_timeout_seconds


def test_hardening_limits_and_health_check_reach_the_host_config() -> None:
    replica = _topology().replicas("1")[0]
    kwargs = container_create_kwargs(replica, SECRETS, network="jobsearch-test-net")
    arguments = _engine_arguments(kwargs)
    host = arguments["host_config"]
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges:true"]
    assert host["Memory"] == replica.limits.memory_mb * 1024 * 1024
    assert host["NanoCpus"] == int(replica.limits.cpus * 1e9)
    assert host["PidsLimit"] == replica.limits.pids
    assert host["RestartPolicy"] == {"Name": "unless-stopped"}
    assert host["LogConfig"] == {
        "Type": "json-file",
        "Config": {"max-size": "10m", "max-file": "5"},
    }
    assert host["Tmpfs"] == {"/tmp": "rw,noexec,nosuid,size=64m"}
    assert host["NetworkMode"] == "jobsearch-test-net"
    assert arguments["healthcheck"]["test"] == ["CMD", "python", "-m", "jobsearch.healthcheck"]
    assert arguments["healthcheck"]["interval"] == replica.healthcheck.interval_seconds * 10**9
    endpoint = arguments["networking_config"]["EndpointsConfig"]["jobsearch-test-net"]
    assert endpoint["Aliases"] == ["api-1-1"]


def test_proxy_keeps_its_fixed_address_ports_and_mounts() -> None:
    topology = _topology()
    kwargs = container_create_kwargs(topology.proxy, {}, network=topology.network.name)
    arguments = _engine_arguments(kwargs)
    host = arguments["host_config"]
    assert host["PortBindings"] == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18080"}]}
    assert sorted(host["Binds"]) == [
        "/state/caddy-config:/etc/caddy:ro",
        "/state/caddy-data:/data:rw",
    ]
    endpoint = arguments["networking_config"]["EndpointsConfig"][topology.network.name]
    assert endpoint["IPAMConfig"] == {"IPv4Address": topology.network.proxy_address}
    assert arguments["command"] == list(topology.proxy.command or ())


def test_postgres_gets_its_password_and_a_named_volume() -> None:
    topology = _topology()
    postgres = next(spec for spec in topology.datastores if spec.role == "postgres")
    kwargs = container_create_kwargs(postgres, SECRETS)
    assert kwargs["environment"]["POSTGRES_PASSWORD"] == "pg-secret"
    assert "RAPID_API_KEY" not in kwargs["environment"]
    assert kwargs["volumes"] == {
        "jobsearch-test-pgdata": {"bind": "/var/lib/postgresql/data", "mode": "rw"}
    }
    assert kwargs["ports"] == {"5432/tcp": ("127.0.0.1", 15432)}
    assert "network" not in kwargs  # no network asked for, none added


def test_translation_is_pure() -> None:
    replica = _topology().replicas("1")[0]
    secrets = dict(SECRETS)
    before = copy.deepcopy(replica)
    first = container_create_kwargs(replica, secrets, network="n")
    second = container_create_kwargs(replica, secrets, network="n")
    assert first == second
    assert replica == before
    assert secrets == SECRETS
