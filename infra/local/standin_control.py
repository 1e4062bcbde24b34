"""Reach a running local instance's stand-ins and scale its services, through the engine.

A stand-in's /_control is never published (a swarm publishes on every interface,
so on the LAN too): the command runs inside the stand-in's own container, which
calls it on loopback. `ops local fault` and the container tests both come here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from infra.local.runner import LocalRunner, RolloutError
from infra.standins import CONTROL_PATH, PORT, Source
from infra.topology import standin_role

# Run by the stand-in's own Python: POST the command (argv[1]) to /_control, print the answer.
_CONTROL_SCRIPT = (
    "import sys, urllib.request; "
    "request = urllib.request.Request(sys.argv[2], data=sys.argv[1].encode(), "
    "headers={'Content-Type': 'application/json'}); "
    "print(urllib.request.urlopen(request, timeout=10).read().decode())"
)


def control_standin(
    runner: LocalRunner, source: Source, command: Mapping[str, Any]
) -> dict[str, Any]:
    """Send one /_control command to `source`'s stand-in; returns its answer
    (each source's calls and default mode)."""
    role = standin_role(source)
    containers = runner.containers(role)
    if not containers:
        raise RolloutError(
            f"no {role} task runs in the {runner.config.environment!r} topology "
            f"(stopped? run `ops local --env {runner.config.environment} "
            f"fault {source} healthy`)"
        )
    url = f"http://127.0.0.1:{PORT}{CONTROL_PATH}"
    exit_code, output = containers[0].exec_run(
        ["python", "-c", _CONTROL_SCRIPT, json.dumps(dict(command)), url], user="10001:10001"
    )
    text = output.decode(errors="replace").strip() if isinstance(output, bytes) else ""
    if exit_code != 0:
        raise RolloutError(f"{role}'s control endpoint failed: {text[-300:]}")
    answer: dict[str, Any] = json.loads(text)
    return answer


def scale_service(runner: LocalRunner, role: str, replicas: int, timeout: float = 120) -> None:
    """Run `replicas` tasks of `role` (0 stops it); returns once they run, healthy
    (a task with a health check runs only once it passes), or are all gone."""
    service = runner.service(role)
    if service is None:
        raise RolloutError(f"the {runner.config.environment!r} topology has no {role} service")
    if not service.scale(replicas):
        raise RolloutError(f"the engine refused to scale {service.name} to {replicas}")
    deadline = time.monotonic() + timeout
    while True:
        tasks = [task for task in runner.tasks(role) if task.desired == "running"]
        running = [task for task in tasks if task.state == "running"]
        # Stopped means its containers are gone, not only told to stop: a stopping one
        # still answers on the connections a client keeps alive.
        if replicas == 0 and not tasks and not _containers_left(runner, role):
            return
        if replicas > 0 and len(running) >= replicas:
            return
        if time.monotonic() > deadline:
            raise RolloutError(
                f"{service.name}: {len(running)} of {replicas} tasks running after {timeout:.0f}s"
            )
        time.sleep(0.5)


def _containers_left(runner: LocalRunner, role: str) -> bool:
    """Whether any task container of `role`'s service still exists, running or stopping."""
    service = runner.service(role)
    if service is None:
        return False
    swarm_label = f"com.docker.swarm.service.name={service.name}"
    return bool(runner.client.containers.list(all=True, filters={"label": swarm_label}))
