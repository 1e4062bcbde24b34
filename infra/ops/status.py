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
from infra.ops.cli import OpsError
from infra.ops.pulumi_stack import (
    IMAGE_OUTPUT,
    STACKS,
    URL_OUTPUT,
    PulumiStack,
    last_deploy,
)
from infra.ops.report import (
    Check,
    add_json_flag,
    check_lines,
    checks_as_json,
    emit,
    humanize_seconds,
    worst,
)
from infra.topology import GENERATION_LABEL

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


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "status",
        help="deployed digest, health, readiness and age of the last deploy of a stack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_stack_argument(parser)
    add_json_flag(parser)
    parser.set_defaults(handler=run)


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
    if last and last.get("result") != "succeeded":
        lines.append(f"last update: {last['kind']} {last['result']} at {last['started']}")
    for replica in document.get("replicas", []):
        lines.append(f"replica  {replica['name']}: {replica['state']}, health {replica['health']}")
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
        "_checks": _http_checks(url if isinstance(url, str) else None),
    }


def docker_time(value: str) -> datetime | None:
    """Docker's RFC 3339 timestamps carry nanoseconds, which datetime cannot."""
    if not value or value.startswith("0001-"):
        return None
    head, _, rest = value.rstrip("Z").partition(".")
    fraction = "".join(ch for ch in rest if ch.isdigit())[:6] or "0"
    return datetime.strptime(f"{head}.{fraction}", "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)


def _replica(container: Any) -> dict[str, Any]:
    state: dict[str, Any] = container.attrs.get("State") or {}
    return {
        "name": container.name,
        "generation": container.labels.get(GENERATION_LABEL, "?"),
        "image": str(container.attrs.get("Image", "")),
        "state": str(state.get("Status", "")),
        "health": str((state.get("Health") or {}).get("Status", "none")),
        "started": str(state.get("StartedAt", "")),
    }


def local_status(environment: str) -> dict[str, Any]:
    # Imported here: the Docker SDK is slow to import and only the local stacks need it.
    from infra.ops import local_stack  # noqa: PLC0415

    with local_stack.failures_as_ops_errors():
        runner = local_stack.open_runner(environment)
        url = runner.topology().public_url
        history = runner.state.history()
        replicas = [_replica(container) for container in runner.api_containers()]
    live = [r for r in replicas if r["state"] == "running"]
    checks = _http_checks(url)
    unhealthy = [str(r["name"]) for r in live if r["health"] not in ("healthy", "none")]
    if not live:
        checks.append(Check("replicas", "fail", "no service replica is running", {}))
    elif unhealthy:
        checks.append(Check("replicas", "warn", "not healthy: " + ", ".join(unhealthy), {}))
    else:
        checks.append(Check("replicas", "pass", f"{len(live)} running and healthy", {}))
    started = [moment for r in live if (moment := docker_time(r["started"])) is not None]
    deployed_at, age = _age(min(started) if started else None)
    return {
        "url": url,
        "image": history.current_image,
        "previous_image": history.previous_image,
        "deployed_at": deployed_at,
        "deploy_age_seconds": age,
        "replicas": replicas,
        "_checks": checks,
    }
