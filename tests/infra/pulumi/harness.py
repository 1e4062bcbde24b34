"""Runs infra/__main__.py under Pulumi's mocks, as the language host runs it, and
writes the resource graph it registered as JSON.

    python -m tests.infra.pulumi.harness INPUT.json OUTPUT.json

INPUT holds the stack name, its config (as the CLI passes it), the secret
keys and what the staging stack exports. Each run is a fresh process: the
Pulumi runtime keeps global state, so two programs in one process would mix.

Recorded per resource: type, name, URN, parent, provider, the inputs exactly
as serialized for the engine (secrets keep their secret signature), the
dependencies and the resource options. Also recorded: the stack outputs (with
their secret signatures), the program's log lines, and its error if it failed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import runpy
import sys
import traceback
from pathlib import Path
from typing import Any

from google.protobuf import empty_pb2, json_format  # type: ignore[import-untyped]
from pulumi.runtime import set_all_config
from pulumi.runtime.mocks import MockEngine, MockMonitor, Mocks, MockSettings
from pulumi.runtime.settings import configure
from pulumi.runtime.stack import run_in_stack

ROOT = Path(__file__).resolve().parents[3]
PROGRAM = ROOT / "infra"
SERVER_IPV4 = "203.0.113.10"
# Not PEM-armoured: nothing reads it as a key, and an armoured fake trips secret scanners.
FAKE_HOST_PRIVATE_KEY = "fake-host-private-key-9e9e\n"
FAKE_HOST_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeHostKeyForTestsOnly\n"


def node_index(name: str) -> int:
    """0 for a first node's resource (host-server), n - 1 for host-server-n."""
    tail = name.rsplit("-", 1)[-1]
    return int(tail) - 1 if tail.isdigit() else 0


def server_ipv4(index: int) -> str:
    return SERVER_IPV4.rsplit(".", 1)[0] + f".{10 + index}"


def fake_host_public_key(index: int) -> str:
    """Node 0's is FAKE_HOST_PUBLIC_KEY; each other node has its own."""
    if index == 0:
        return FAKE_HOST_PUBLIC_KEY
    return FAKE_HOST_PUBLIC_KEY.replace("\n", f"{index + 1}\n")


# What the first manager prints for `docker swarm join-token -q <role>`: a secret.
FAKE_JOIN_TOKEN = "SWMTKN-1-fakejointoken4u7e-"


def fake_stdout(name: str, script: str) -> str:
    """What a remote command prints: a join token, or the node ID the swarm scripts end with."""
    for role in ("worker", "manager"):
        if script == f"docker swarm join-token -q {role}":
            return f"{FAKE_JOIN_TOKEN}{role}\n"
    if "{{.Swarm.NodeID}}" in script:
        return f"nodeid-{name}\n"
    return ""


class GraphMocks(Mocks):
    """Plausible outputs for each resource type the program creates."""

    def __init__(self, staging_exports: dict[str, str] | None) -> None:
        self.staging_exports = staging_exports
        self.counter = 100

    def new_resource(self, args: Any) -> tuple[str, dict[str, Any]]:
        self.counter += 1
        state = dict(args.inputs)
        kind = args.typ
        if kind == "pulumi:pulumi:StackReference":
            if self.staging_exports is None:
                raise RuntimeError(f"unknown stack {args.resource_id}")
            return args.resource_id, {
                "name": args.resource_id,
                "outputs": dict(self.staging_exports),
                "secretOutputNames": [],
            }
        if kind == "hcloud:index/server:Server":
            # host-server, host-server-2, ...: 203.0.113.10, .11, ...
            index = node_index(args.name)
            state.update(ipv4Address=server_ipv4(index), ipv6Address=f"2001:db8::{10 + index}")
        elif kind == "tls:index/privateKey:PrivateKey":
            state.update(
                privateKeyOpenssh=FAKE_HOST_PRIVATE_KEY,
                publicKeyOpenssh=fake_host_public_key(node_index(args.name)),
            )
        elif kind in ("docker:index/secret:Secret", "docker:index/serviceConfig:ServiceConfig"):
            # What the engine's auto-naming does: the resource name and a random suffix.
            suffix = hashlib.sha256(f"{args.name}{self.counter}".encode()).hexdigest()[:7]
            state.setdefault("name", f"{args.name}-{suffix}")
        elif kind == "command:remote:Command":
            state.setdefault("stdout", fake_stdout(args.name, str(state.get("create") or "")))
        elif kind.startswith("pulumi-python:dynamic"):
            names = sorted(state.get("migrations", {}))
            state.update(applied=names, applied_now=names)
        return str(self.counter), state

    def call(self, args: Any) -> tuple[dict[str, Any], None]:
        raise RuntimeError(f"the program made an unexpected call: {args.token}")


def _dict(message: Any) -> Any:
    return json_format.MessageToDict(message, preserving_proto_field_name=False)


class RecordingMonitor(MockMonitor):
    def __init__(self, mocks: Mocks) -> None:
        super().__init__(mocks)
        self.registered: list[dict[str, Any]] = []
        self.reads: list[dict[str, Any]] = []
        self.stack_outputs: dict[str, Any] | None = None
        self.stack_urn = ""

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            self.stack_urn = response.urn
            return response
        self.registered.append(
            {
                "urn": response.urn,
                "type": request.type,
                "name": request.name,
                "custom": request.custom,
                "parent": request.parent,
                "provider": request.provider,
                "inputs": _dict(request.object),
                "dependencies": list(request.dependencies),
                "property_dependencies": {
                    key: list(value.urns) for key, value in request.propertyDependencies.items()
                },
                "additional_secret_outputs": list(request.additionalSecretOutputs),
                "delete_before_replace": request.deleteBeforeReplace,
                "ignore_changes": list(request.ignoreChanges),
                "protect": bool(request.protect),
                "custom_timeouts": _dict(request.customTimeouts),
            }
        )
        return response

    def ReadResource(self, request: Any) -> Any:
        response = super().ReadResource(request)
        self.reads.append({"urn": response.urn, "type": request.type, "id": request.id})
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        if request.urn == self.stack_urn:
            self.stack_outputs = _dict(request.outputs)
        return empty_pb2.Empty()


class LogRecorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[dict[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append({"level": record.levelname, "message": record.getMessage()})


def _run_program() -> None:
    # What the language host does with `main: infra/`.
    runpy.run_path(str(PROGRAM), run_name="__main__")


def run(document: dict[str, Any]) -> dict[str, Any]:
    mocks = GraphMocks(document.get("staging_exports"))
    monitor = RecordingMonitor(mocks)
    logs = LogRecorder()
    logger = logging.getLogger("jobsearch-program")
    logger.addHandler(logs)
    logger.setLevel(logging.DEBUG)
    # What set_mocks does, minus its root stack: run_in_stack makes the
    # program's own, as the language host does, so exports are registered.
    configure(
        MockSettings(
            monitor=monitor,
            monitor_features=set(monitor.GetDeploymentInfo(empty_pb2.Empty()).supportedFeatures),
            engine=MockEngine(logger),
            project="jobsearch",
            stack=document["stack"],
            dry_run=False,
            organization="organization",
            callbacks=None,
        )
    )
    set_all_config(document["config"], document["secret_keys"])
    error = None
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(run_in_stack(_run_program))
    except Exception as failure:
        error = {
            "type": type(failure).__name__,
            "message": str(failure),
            "traceback": traceback.format_exc(),
        }
    return {
        "stack": document["stack"],
        "resources": monitor.registered,
        "reads": monitor.reads,
        "outputs": monitor.stack_outputs,
        "logs": logs.lines,
        "error": error,
    }


def main() -> None:
    source, target = sys.argv[1:3]
    document = json.loads(Path(source).read_text())
    Path(target).write_text(json.dumps(run(document), indent=1, default=str))


if __name__ == "__main__":
    main()
