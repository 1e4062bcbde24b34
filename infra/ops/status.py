"""`ops status --stack S`: the deployed digest, health, readiness and the age of the last deploy.

For `local`, read from the Docker engine (the containers of `make local`); for
staging and prod, from `pulumi stack output` and `pulumi stack history`, then
asked of the stack's public URL. Exit 0 when health and readiness do not fail.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from infra.ops import probes
from infra.ops.cli import Command, OpsError
from infra.ops.pulumi_stack import (
    DOCKER_HOST_OUTPUT,
    STACKS,
    URL_OUTPUT,
    PulumiStack,
    last_deploy,
)
from infra.ops.report import (
    Check,
    check_lines,
    checks_as_json,
    emit,
    humanize_seconds,
    worst,
)
from infra.promotion import IMAGE_OUTPUT
from infra.topology import ENVIRONMENT_LABEL, ROLE_LABEL

# The instances `ops local` runs on this machine's Docker engine (test: the suite's own).
LOCAL_STACKS = ("local", "test")
ALL_STACKS = (*LOCAL_STACKS, *STACKS)


def add_stack_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stack",
        required=True,
        choices=ALL_STACKS,
        help="staging or prod (Pulumi stacks), or local (`make local`; test is the suite's own)",
    )


def run(args: argparse.Namespace) -> int:
    read = local_status if args.stack in LOCAL_STACKS else stack_status
    document = read(args.stack)
    document["stack"] = args.stack
    checks: list[Check] = document.pop("_checks")
    verdict = worst(checks)
    document["checks"] = checks_as_json(checks)
    document["verdict"] = verdict
    emit(args, document, _lines(document, checks))
    return 1 if verdict == "fail" else 0


def _lines(document: dict[str, Any], checks: list[Check]) -> list[str]:
    lines = [
        f"stack    {document['stack']}",
        f"url      {document.get('url') or '(none)'}",
        f"image    {document.get('image') or '(unknown)'}",
    ]
    if document.get("previous_image"):
        lines.append(f"previous {document['previous_image']}")
    age = document.get("deploy_age_seconds")
    if age is not None:
        lines.append(f"deployed {humanize_seconds(age)} ago ({document['deployed_at']})")
    else:
        lines.append("deployed (never, or unknown)")
    last = document.get("last_update")
    if last and "result" in last and last["result"] != "succeeded":
        lines.append(f"last update: {last['kind']} {last['result']} at {last['started']}")
    for update in (last, document.get("engine_update")):
        if update and "state" in update:
            lines.append(f"engine   last update {update['state']}: {update.get('message', '')}")
    for node in document.get("nodes", []):
        lines.append(
            f"node     {node['hostname']} ({node['role']}): {node['state']}, {node['availability']}"
        )
    for replica in document.get("replicas", []):
        error = f" ({replica['error']})" if replica["error"] else ""
        lines.append(
            f"task     {replica['name']} on {replica['node']}: "
            f"{replica['state']} (desired {replica['desired']}){error}"
        )
    return [*lines, *check_lines(checks)]


def _http_checks(url: str | None) -> list[Check]:
    if not url:
        return [Check("health", "fail", "the stack exports no URL", {})]
    with probes.client() as http:
        try:
            health = probes.health_check(probes.fetch(http, f"{url}/health"))
        except OpsError as error:
            return [Check("health", "fail", str(error), {})]
        try:
            readiness = probes.readiness_check(probes.fetch(http, f"{url}/ready"))
        except OpsError as error:
            readiness = Check("readiness", "fail", str(error), {})
    return [health, readiness]


def _age(moment: datetime | None) -> tuple[str | None, float | None]:
    if moment is None:
        return None, None
    return moment.isoformat(), (datetime.now(UTC) - moment).total_seconds()


def stack_status(name: str) -> dict[str, Any]:
    stack = PulumiStack(name)
    outputs = stack.outputs()
    history = stack.history()
    deploy = last_deploy(history)
    deployed_at, age = _age(deploy.ended or deploy.started if deploy else None)
    url = outputs.get(URL_OUTPUT)
    newest = history[0] if history else None
    swarm = _stack_swarm(outputs)
    swarm_checks = swarm.pop("_checks", [])
    return {
        "url": url,
        "image": outputs.get(IMAGE_OUTPUT),
        "deployed_at": deployed_at,
        "deploy_age_seconds": age,
        "last_update": None
        if newest is None
        else {
            "version": newest.version,
            "kind": newest.kind,
            "result": newest.result,
            "started": newest.started.isoformat(),
        },
        # The engine's own account of its last rolling update, beside Pulumi's.
        "engine_update": swarm.pop("last_update", None),
        **swarm,
        "_checks": [*_http_checks(url if isinstance(url, str) else None), *swarm_checks],
    }


def _stack_swarm(outputs: dict[str, Any]) -> dict[str, Any]:
    """The swarm view of a stack, asked of its manager over SSH (the `docker_host` output),
    as `DOCKER_HOST=ssh://...` would; nothing when the stack exports no manager."""
    address = outputs.get(DOCKER_HOST_OUTPUT)
    environment = outputs.get("environment")
    if not isinstance(address, str) or not isinstance(environment, str):
        return {}
    # Imported here: the Docker SDK is slow to import and only this view needs it.
    import docker  # noqa: PLC0415
    from docker.errors import DockerException  # noqa: PLC0415

    try:
        client = docker.DockerClient(
            base_url=address, use_ssh_client=address.startswith("ssh://"), timeout=30
        )
        view = swarm_view(client, environment)
    except DockerException as error:
        reason = str(error).splitlines()[0][:200]
        return {"_checks": [Check("swarm", "warn", f"{address} did not answer: {reason}", {})]}
    view.pop("deployed_at", None)
    view.pop("deploy_age_seconds", None)
    return view


def docker_time(value: str) -> datetime | None:
    """Docker's RFC 3339 timestamps carry nanoseconds, which datetime cannot."""
    if not value or value.startswith("0001-"):
        return None
    head, _, rest = value.rstrip("Z").partition(".")
    fraction = "".join(ch for ch in rest if ch.isdigit())[:6] or "0"
    return datetime.strptime(f"{head}.{fraction}", "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)


def swarm_view(client: Any, environment: str) -> dict[str, Any]:
    """What the swarm's manager says of an environment: its nodes, the API's tasks on
    them, the engine's last update and the checks those make (under "_checks")."""
    # Imported here: the Docker SDK is slow to import and only this view needs it.
    from infra.local.runner import read_nodes, read_tasks  # noqa: PLC0415

    nodes = read_nodes(client)
    tasks = read_tasks(client, environment, "api")
    filters = {"label": [f"{ENVIRONMENT_LABEL}={environment}", f"{ROLE_LABEL}=api"]}
    services = client.services.list(filters=filters)
    if not services:
        return {"nodes": nodes, "replicas": [], "last_update": None, "_checks": [
            Check("replicas", "fail", f"no API service of {environment!r} on this swarm", {})
        ]}  # fmt: skip
    attrs = services[0].attrs
    wanted = int(attrs["Spec"]["Mode"]["Replicated"]["Replicas"])
    update = {key.lower(): str(value) for key, value in (attrs.get("UpdateStatus") or {}).items()}
    hostnames = {node["id"]: node["hostname"] for node in nodes}
    replicas = [
        {
            "name": f"{task.service}.{task.slot}",
            "node": hostnames.get(task.node, task.node[:12]),
            "image": task.image,
            "desired": task.desired,
            "state": task.state,
            "error": task.error,
        }
        for task in tasks
        if task.desired == "running" or task.error
    ]
    # A task on a node that went down still reads "running" until the manager moves it.
    ready = {hostnames.get(node["id"], "") for node in nodes if node["state"] == "ready"}
    running = [
        r
        for r in replicas
        if r["desired"] == "running" and r["state"] == "running" and r["node"] in ready
    ]
    down = [node["hostname"] for node in nodes if node["state"] != "ready"]
    detail = f"{len(running)} of {wanted} running" + (
        f"; nodes down: {', '.join(down)}" if down else ""
    )
    checks = [
        Check(
            "replicas",
            "fail" if not running else "warn" if len(running) < wanted or down else "pass",
            detail if running else "no service replica is running",
            {},
        )
    ]
    if update.get("state", "").startswith("rollback") or update.get("state") == "paused":
        checks.append(
            Check("last_update", "warn", f"{update['state']}: {update.get('message', '')}", {})
        )
    deployed_at, age = _age(docker_time(str(attrs.get("UpdatedAt", ""))))
    return {
        "nodes": nodes,
        "replicas": replicas,
        "last_update": update or None,
        "deployed_at": deployed_at,
        "deploy_age_seconds": age,
        "_checks": checks,
    }


def local_status(environment: str) -> dict[str, Any]:
    # Imported here: the Docker SDK is slow to import and only the local stacks need it.
    from infra.ops import local_stack  # noqa: PLC0415

    with local_stack.failures_as_ops_errors():
        runner = local_stack.open_runner(environment)
        url = runner.topology().public_url
        history = runner.state.history()
        view = swarm_view(runner.client, environment)
        tasks = [task for task in runner.tasks() if task.desired == "running"]
    return {
        "url": url,
        "image": history.current_image,
        "previous_image": history.previous_image,
        **view,
        # Every service of the instance, not only the API: the datastores and stand-ins too.
        "tasks": [
            {"name": f"{task.service}.{task.slot}", "role": task.role, "state": task.state}
            for task in tasks
        ],
        "_checks": [*_http_checks(url), *view["_checks"], _tasks_check(environment, tasks)],
    }


def _tasks_check(environment: str, tasks: list[Any]) -> Check:
    if not tasks:
        return Check("services", "fail", f"nothing runs for {environment!r}", {})
    stopped = sorted(f"{task.service}.{task.slot}" for task in tasks if task.state != "running")
    if stopped:
        return Check("services", "fail", f"not running: {', '.join(stopped)}", {})
    roles = sorted({task.role for task in tasks})
    return Check("services", "pass", f"{len(tasks)} tasks running: {', '.join(roles)}", {})


COMMAND = Command(
    "status",
    help="deployed digest, health, readiness and age of the last deploy of a stack",
    description=__doc__,
    arguments=add_stack_argument,
    json=True,
    run=run,
)
