"""What the container host must look like after a deploy.

The same checks run on a stack's host (tests/smoke/test_host.py, after each
deploy: over SSH as the restricted `smoke` user, whose only command is the
host's report, infra/components/host.py) and on this machine against the
suite's local topology with testinfra (tests/infra/ops/test_local_stack.py),
so they are known to pass on a good deploy.
"""

from __future__ import annotations

from typing import Any

from infra.topology import PROJECT, PROXY_UID, SERVICE_UID

PUBLIC_TCP_PORTS = {22, 80, 443}
# A login in one of these groups is root on the host.
ROOT_EQUIVALENT_GROUPS = ("docker", "sudo", "root", "adm", "lxd")


def containers(host: Any, environment: str) -> dict[str, dict[str, Any]]:
    """`docker inspect` of every container of the stack, by name."""
    found = host.docker.get_containers(label=f"org.jobsearch.environment={environment}")
    return project_containers([container.inspect() for container in found], environment)


def project_containers(
    documents: list[dict[str, Any]], environment: str
) -> dict[str, dict[str, Any]]:
    return {
        document["Name"].lstrip("/"): document
        for document in documents
        if document["Config"]["Labels"].get("org.jobsearch.project") == PROJECT
        and document["Config"]["Labels"].get("org.jobsearch.environment") == environment
    }


def _role(document: dict[str, Any]) -> str:
    return str(document["Config"]["Labels"].get("org.jobsearch.role", ""))


def _running_healthy(document: dict[str, Any]) -> bool:
    state = document["State"]
    return bool(state["Running"]) and (state.get("Health") or {}).get("Status") == "healthy"


def check_topology(host: Any, environment: str) -> None:
    """The replicas, the proxy and Redis run, healthy, with the topology's hardening."""
    check_containers(containers(host, environment), environment)


def check_containers(by_name: dict[str, dict[str, Any]], environment: str) -> None:
    api = {
        name: doc
        for name, doc in by_name.items()
        if _role(doc) == "api" and doc["State"]["Running"]
    }
    assert api, f"no service replica of {environment} runs"
    for name, document in api.items():
        assert _running_healthy(document), f"{name} is not healthy"
        config, host_config = document["Config"], document["HostConfig"]
        assert config["User"] == SERVICE_UID, f"{name} runs as {config['User']!r}"
        assert host_config["ReadonlyRootfs"], f"{name} has a writable root filesystem"
        assert "ALL" in (host_config.get("CapDrop") or []), f"{name} keeps capabilities"
        # Swarm services cannot set no-new-privileges on engine API 1.41 (README, Known
        # limits): with every capability dropped, a setuid binary gains nothing.
        assert not host_config.get("PortBindings"), f"{name} publishes ports: the proxy only"
    images = {document["Image"] for document in api.values()}
    assert len(images) == 1, f"replicas run different images: {sorted(images)}"

    # A swarm keeps the stopped containers of earlier tasks: only running ones count.
    proxies = [doc for doc in by_name.values() if _role(doc) == "proxy" and doc["State"]["Running"]]
    assert len(proxies) == 1, f"{len(proxies)} proxies"
    assert _running_healthy(proxies[0]), "the proxy is not healthy"
    assert proxies[0]["Config"]["User"] == PROXY_UID
    datastores = [
        doc
        for doc in by_name.values()
        if _role(doc) in ("redis", "postgres") and doc["State"]["Running"]
    ]
    for document in datastores:
        published = document["HostConfig"].get("PortBindings") or {}
        # Only the local topology's own Postgres is published (for the runner's
        # migrations); the stacks' Redis never is.
        if _role(document) == "redis" or environment not in ("local", "test"):
            assert not published, f"{document['Name']} publishes ports: the proxy only"


def check_server(host: Any) -> None:
    """A stack's own server: Docker runs, and nothing but SSH and the proxy listens publicly."""
    check_listening(host.service("docker").is_running, host.socket.get_listening_sockets())


def check_listening(docker_running: bool, sockets: list[str]) -> None:
    assert docker_running, "Docker is not running"
    public = set()
    for socket in sockets:
        protocol, _, rest = socket.partition("://")
        address, _, port = rest.rpartition(":")
        if (
            protocol == "tcp"
            and address not in ("127.0.0.1", "::1")
            and not address.startswith("127.")
        ):
            public.add(int(port))
    assert public <= PUBLIC_TCP_PORTS, (
        f"listening publicly beyond SSH and the proxy: {sorted(public - PUBLIC_TCP_PORTS)}"
    )


def check_report(report: dict[str, Any], environment: str) -> None:
    """The host's smoke report: the login has no root powers, then the checks above."""
    for group in ROOT_EQUIVALENT_GROUPS:
        assert group not in report["caller_groups"], (
            f"the smoke login is in the {group} group: it must not be root-equivalent"
        )
    check_containers(project_containers(report["containers"], environment), environment)
    check_listening(report["docker_running"], report["listening"])
