"""What the container host must look like after a deploy, checked with testinfra.

The same checks run over SSH against a stack's host (tests/smoke/test_host.py,
after each deploy) and on this machine against the suite's local topology
(tests/infra/ops/test_local_stack.py), so they are known to pass on a good
deploy.
"""

from __future__ import annotations

from typing import Any

from infra.topology import PROJECT, PROXY_UID, SERVICE_UID

PUBLIC_TCP_PORTS = {22, 80, 443}


def containers(host: Any, environment: str) -> dict[str, dict[str, Any]]:
    """`docker inspect` of every container of the stack, by name."""
    found = host.docker.get_containers(label=f"org.jobsearch.environment={environment}")
    documents = [container.inspect() for container in found]
    return {
        document["Name"].lstrip("/"): document
        for document in documents
        if document["Config"]["Labels"].get("org.jobsearch.project") == PROJECT
    }


def _role(document: dict[str, Any]) -> str:
    return str(document["Config"]["Labels"].get("org.jobsearch.role", ""))


def _running_healthy(document: dict[str, Any]) -> bool:
    state = document["State"]
    return bool(state["Running"]) and (state.get("Health") or {}).get("Status") == "healthy"


def check_topology(host: Any, environment: str) -> None:
    """The replicas, the proxy and Redis run, healthy, with the topology's hardening."""
    by_name = containers(host, environment)
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
        assert "no-new-privileges:true" in (host_config.get("SecurityOpt") or []), name
        assert not host_config.get("PortBindings"), f"{name} publishes ports: the proxy only"
    images = {document["Image"] for document in api.values()}
    assert len(images) == 1, f"replicas run different images: {sorted(images)}"

    proxies = [doc for doc in by_name.values() if _role(doc) == "proxy"]
    assert len(proxies) == 1, f"{len(proxies)} proxies"
    assert _running_healthy(proxies[0]), "the proxy is not healthy"
    assert proxies[0]["Config"]["User"] == PROXY_UID
    for document in by_name.values():
        if _role(document) in ("redis", "postgres"):
            assert document["State"]["Running"], f"{document['Name']} is not running"
            for bindings in (document["HostConfig"].get("PortBindings") or {}).values():
                for binding in bindings or []:
                    assert binding.get("HostIp") == "127.0.0.1", (
                        f"{document['Name']} is published beyond loopback"
                    )


def check_server(host: Any) -> None:
    """A stack's own server: Docker runs, and nothing but SSH and the proxy listens publicly."""
    assert host.service("docker").is_running
    public = set()
    for socket in host.socket.get_listening_sockets():
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
