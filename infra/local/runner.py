"""Bring the topology of infra/topology.py up on the local engine in swarm mode.

The engine does the orchestration: this module creates the objects the
topology names (an overlay network, volumes, versioned secrets and configs,
services, each spec from infra/swarm.py) and waits for the engine to converge.
A rollout is a service update; the engine replaces one task at a time, each
new one healthy before the old one stops, and rolls the service back by itself
when a new task fails. Nothing here reloads the proxy or lists upstreams.

Every service carries a fingerprint of its spec (a label), so `up` twice
changes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import docker
import httpx
import psycopg
from docker.errors import APIError, ImageNotFound, NotFound
from docker.models.containers import Container
from docker.models.services import Service
from docker.types import IPAMConfig, IPAMPool

from infra import migrations
from infra.local.state import LocalConfig, LocalState
from infra.standins import KEY_SETTINGS, SAMPLE_KEYS
from infra.swarm import ObjectRef, engine_spec
from infra.topology import (
    LOCAL_DATABASE,
    LOGICAL_NAME_LABEL,
    ROLE_LABEL,
    START_ORDER,
    Topology,
    TopologySpec,
    base_labels,
    describe,
    versioned_name,
)

FINGERPRINT_LABEL = "org.jobsearch.fingerprint"
# Beyond the engine's own verdict (health checks, the update's monitor window).
CONVERGE_MARGIN_SECONDS = 60
# After an update is sent, how long the engine may take to start rolling tasks;
# an update that changes no task never starts one.
UPDATE_START_SECONDS = 3.0

Say = Callable[[str], None]


class RolloutError(Exception):
    """A change was refused or failed; the message says why and what was kept."""


@dataclass(frozen=True)
class TaskStatus:
    service: str
    role: str
    slot: int
    node: str
    image: str
    desired: str
    state: str
    message: str
    error: str
    container_id: str
    created: str  # RFC 3339, as the engine writes it


def _labels_filter(environment: str, role: str | None = None) -> dict[str, Any]:
    labels = {**base_labels(environment), **({ROLE_LABEL: role} if role else {})}
    return {"label": [f"{key}={value}" for key, value in labels.items()]}


def _short(image: str) -> str:
    """An image id as `docker images` shows it; a name as it is."""
    return image.removeprefix("sha256:")[:12] if image.startswith("sha256:") else image


def _fingerprint(spec: Mapping[str, Any]) -> str:
    material = json.dumps(spec, sort_keys=True, default=str)
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def _update_kwargs(spec: Mapping[str, Any]) -> dict[str, Any]:
    """docker-py's create_service/update_service arguments for an engine spec."""
    return {
        "task_template": spec["TaskTemplate"],
        "name": spec["Name"],
        "labels": spec["Labels"],
        "mode": spec["Mode"],
        "update_config": spec["UpdateConfig"],
        "rollback_config": spec["RollbackConfig"],
        "endpoint_spec": spec["EndpointSpec"],
    }


def read_tasks(
    client: docker.DockerClient, environment: str, role: str | None = None
) -> list[TaskStatus]:
    """Every task of an environment's services (of one role), on any node."""
    services = client.services.list(filters=_labels_filter(environment, role))
    statuses = []
    for service in services:
        for task in service.tasks():  # type: ignore[no-untyped-call]
            status = task.get("Status") or {}
            container = status.get("ContainerStatus") or {}
            spec = (task.get("Spec") or {}).get("ContainerSpec") or {}
            statuses.append(
                TaskStatus(
                    service=str(service.name),
                    role=str(service.attrs["Spec"]["Labels"].get(ROLE_LABEL, "")),
                    slot=int(task.get("Slot") or 0),
                    node=str(task.get("NodeID", "")),
                    image=str(spec.get("Image", "")),
                    desired=str(task.get("DesiredState", "")),
                    state=str(status.get("State", "")),
                    message=str(status.get("Message", "")),
                    error=str(status.get("Err", "")),
                    container_id=str(container.get("ContainerID", "")),
                    created=str(task.get("CreatedAt", "")),
                )
            )
    return sorted(statuses, key=lambda task: (task.service, task.slot, task.desired))


def read_nodes(client: docker.DockerClient) -> list[dict[str, str]]:
    """The swarm's nodes: id, hostname, role, availability and state."""
    found = []
    for node in client.nodes.list():
        attrs = node.attrs
        found.append(
            {
                "id": str(attrs.get("ID", "")),
                "hostname": str((attrs.get("Description") or {}).get("Hostname", "")),
                "role": str((attrs.get("Spec") or {}).get("Role", "")),
                "availability": str((attrs.get("Spec") or {}).get("Availability", "")),
                "state": str((attrs.get("Status") or {}).get("State", "")),
            }
        )
    return found


class LocalRunner:
    def __init__(
        self,
        client: docker.DockerClient,
        state: LocalState,
        config: LocalConfig,
        say: Say = print,
    ) -> None:
        self.client = client
        self.state = state
        self.config = config
        self.say = say

    # --- the description -------------------------------------------------
    def topology(self, service_image: str = "unused") -> Topology:
        config = self.config
        return describe(
            TopologySpec(
                environment=config.environment,
                images=replace(config.images, service=service_image),
                replicas=config.replicas,
                workers=config.workers,
                http_port=config.http_port,
                settings=dict(config.settings),
                subnet_octet=config.subnet_octet,
                local_datastores=True,
                postgres_host_port=config.postgres_port,
                sample_sources=config.sample_sources,
            )
        )

    def secret_values(self) -> dict[str, str]:
        """What each secret of the topology holds; a missing API key is left out."""
        stored = self.state.secrets()
        values = {name: value for name, value in stored.items() if name != "APP_DB_PASSWORD"}
        values["DATABASE_URL"] = (
            f"postgresql://jobsearch_app:{stored['APP_DB_PASSWORD']}@postgres:5432/{LOCAL_DATABASE}"
        )
        # A stand-in's source gets the key the stand-in accepts, unless one was given.
        for source in self.config.sample_sources:
            values.setdefault(KEY_SETTINGS[source], SAMPLE_KEYS[source])
        return values

    # --- engine objects ----------------------------------------------------
    def image_id(self, reference: str) -> str:
        """What a service runs: a registry reference by digest as it is (every node
        pulls it), anything else as this engine's image id (a one-node swarm)."""
        try:
            found = str(self.client.images.get(reference).id)
            return reference if "@sha256:" in reference else found
        except ImageNotFound:
            pass
        self.say(f"pulling {reference}")
        try:
            pulled = str(self.client.images.pull(reference).id)
            return reference if "@sha256:" in reference else pulled
        except (APIError, NotFound) as error:
            raise RolloutError(
                f"image {reference} is not on this engine and cannot be pulled "
                f"({error.explanation}); on a machine with no registry, "
                "run `ops local up --images debian`"
            ) from None

    def ensure_swarm(self) -> None:
        """Swarm mode on this engine: a one-node swarm, listening on loopback only."""
        state = (self.client.info().get("Swarm") or {}).get("LocalNodeState")
        if state == "active":
            return
        self.say("starting swarm mode on this engine (one node, loopback only)")
        self.client.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")

    def _ensure_network(self, topology: Topology) -> None:
        spec = topology.network
        try:
            network = self.client.networks.get(spec.name)
        except NotFound:
            self.client.api.create_network(
                spec.name,
                driver="overlay",
                attachable=spec.attachable,
                ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=spec.subnet)]),
                labels=base_labels(self.config.environment),
            )
            return
        attrs = network.attrs
        subnets = [item.get("Subnet") for item in attrs.get("IPAM", {}).get("Config") or []]
        if attrs.get("Driver") != "overlay" or spec.subnet not in subnets:
            raise RolloutError(
                f"network {spec.name} exists as a {attrs.get('Driver')} network with "
                f"subnets {subnets}, not an overlay on {spec.subnet}: "
                f"remove it with `ops local --env {self.config.environment} down`"
            )

    def _ensure_volumes(self, topology: Topology) -> None:
        """Named volumes, owned by the user of the service that mounts them."""
        for service in topology.services:
            for mount in service.mounts:
                if mount.kind != "volume":
                    continue
                try:
                    self.client.volumes.get(mount.source)
                    continue
                except NotFound:
                    self.client.volumes.create(
                        mount.source, labels=base_labels(self.config.environment)
                    )
                # A new volume is root's; the service runs as its own user.
                self.client.containers.run(
                    self.image_id(service.image),
                    entrypoint=["chown", service.user, "/volume"],
                    user="0:0",
                    network_mode="none",
                    volumes={mount.source: {"bind": "/volume", "mode": "rw"}},
                    remove=True,
                )

    def _ensure_objects(
        self, kind: str, values: Mapping[str, str], topology: Topology
    ) -> dict[str, ObjectRef]:
        """Versioned secrets or configs: a changed value is a new object."""
        collection = self.client.secrets if kind == "secret" else self.client.configs
        refs: dict[str, ObjectRef] = {}
        for logical, value in values.items():
            name = versioned_name(topology.prefix, logical, value.encode())
            try:
                found = collection.get(name)
            except NotFound:
                labels = {**base_labels(self.config.environment), LOGICAL_NAME_LABEL: logical}
                found = collection.create(name=name, data=value.encode(), labels=labels)
            refs[logical] = ObjectRef(id=str(found.id), name=name)
        return refs

    def _prune_objects(self) -> None:
        """Secrets and configs no service uses any more (the engine refuses the others)."""
        filters = _labels_filter(self.config.environment)
        for collection in (self.client.secrets, self.client.configs):
            for item in collection.list(filters=filters):
                with contextlib.suppress(APIError):  # still mounted by a service
                    item.remove()

    def service(self, role: str) -> Service | None:
        found = self.client.services.list(filters=_labels_filter(self.config.environment, role))
        return found[0] if found else None

    def desired_specs(self, service_image: str) -> dict[str, dict[str, Any]]:
        """Each service's engine spec, secrets and configs created as needed."""
        topology = self.topology(self.image_id(service_image))
        secrets = self._ensure_objects("secret", self.secret_values(), topology)
        configs = self._ensure_objects("config", dict(topology.config_files), topology)
        specs: dict[str, dict[str, Any]] = {}
        for service in topology.services:
            spec = engine_spec(service, topology.network, secrets, configs)
            fingerprint = _fingerprint(spec)
            spec["Labels"] = {**spec["Labels"], FINGERPRINT_LABEL: fingerprint}
            specs[service.role] = spec
        return specs

    # --- convergence -------------------------------------------------------
    def tasks(self, role: str | None = None) -> list[TaskStatus]:
        return read_tasks(self.client, self.config.environment, role)

    def _failure_detail(self, tasks: Iterable[TaskStatus], since: str = "") -> str:
        """Why the newest failed task (created since `since`) failed: the engine's word,
        its last health check and what the container printed last."""
        failed = [
            task
            for task in sorted(tasks, key=lambda task: task.created)
            if task.state in ("failed", "rejected", "shutdown") and task.created >= since
        ]
        failed = [task for task in failed if task.error or task.state != "shutdown"]
        if not failed:
            return "no task reported an error"
        task = failed[-1]
        detail = f"task {task.service}.{task.slot} {task.state}: {task.error or task.message}"
        if not task.container_id:
            return detail
        try:
            container = self.client.containers.get(task.container_id)
        except NotFound:
            return detail
        health = (container.attrs.get("State") or {}).get("Health") or {}
        log = health.get("Log") or []
        if log:
            output = str(log[-1].get("Output") or "").strip().replace("\n", " / ")
            detail += f"; last health check exited {log[-1].get('ExitCode')}: {output or '(none)'}"
        raw = container.logs(tail=3)
        text = raw.decode(errors="replace").strip().replace("\n", " / ") if raw else ""
        return f"{detail}; last output of the container: {text[-300:] or '(none)'}"

    def _wait_running(self, role: str, spec: Mapping[str, Any], timeout: float) -> None:
        """Every replica of a new service running (which, with a health check, means healthy)."""
        wanted = int(spec["Mode"]["Replicated"]["Replicas"])
        deadline = time.monotonic() + timeout
        while True:
            tasks = self.tasks(role)
            running = [t for t in tasks if t.desired == "running" and t.state == "running"]
            if len(running) >= wanted:
                return
            if time.monotonic() > deadline:
                raise RolloutError(
                    f"{spec['Name']}: {len(running)} of {wanted} tasks running after "
                    f"{timeout:.0f}s; {self._failure_detail(tasks)}"
                )
            time.sleep(0.5)

    def _wait_update(self, service: Service, before: str | None, timeout: float) -> None:
        """Wait for the engine's rolling update; raise if it rolled back or paused."""
        deadline = time.monotonic() + timeout
        sent = time.monotonic()
        while True:
            service.reload()
            status = service.attrs.get("UpdateStatus") or {}
            started = status.get("StartedAt")
            state = status.get("State")
            if started != before and state in ("completed",):
                return
            if started != before and state in ("rollback_completed", "rollback_paused", "paused"):
                role = service.attrs["Spec"]["Labels"].get(ROLE_LABEL)
                raise RolloutError(
                    f"the engine {state.replace('_', ' ')} the update of {service.name} "
                    f"({status.get('Message', '')}): "
                    f"{self._failure_detail(self.tasks(role), since=str(started))}"
                )
            # Nothing to roll: only the service's own fields changed, and the engine keeps
            # the last update's status, or (20.10) none at all.
            if (not status or started == before) and time.monotonic() - sent > (
                UPDATE_START_SECONDS
            ):
                return
            if time.monotonic() > deadline:
                raise RolloutError(
                    f"the update of {service.name} is still {state} after {timeout:.0f}s"
                )
            time.sleep(0.5)

    @staticmethod
    def _converge_timeout(spec: Mapping[str, Any]) -> float:
        task = spec["TaskTemplate"]["ContainerSpec"]["Healthcheck"]
        per_check = (task["Interval"] + task["Timeout"]) / 1e9
        worst = task["StartPeriod"] / 1e9 + (task["Retries"] + 1) * per_check
        replicas = int(spec["Mode"]["Replicated"]["Replicas"])
        monitor = spec["UpdateConfig"]["Monitor"] / 1e9
        return float(replicas * worst + monitor + CONVERGE_MARGIN_SECONDS)

    def apply(self, role: str, spec: dict[str, Any]) -> bool:
        """Create or update one service and wait for it; returns whether it changed."""
        existing = self.service(role)
        timeout = self._converge_timeout(spec)
        if existing is None:
            self.say(f"creating {spec['Name']}")
            self.client.api.create_service(**_update_kwargs(spec))  # type: ignore[no-untyped-call]
            self._wait_running(role, spec, timeout)
            return True
        labels = existing.attrs["Spec"].get("Labels") or {}
        # A service scaled by hand (`ops local fault`) counts as changed: `up` restores it.
        scaled = existing.attrs["Spec"].get("Mode") != spec["Mode"]
        if labels.get(FINGERPRINT_LABEL) == spec["Labels"][FINGERPRINT_LABEL] and not scaled:
            return False
        self.say(f"updating {spec['Name']}")
        before = (existing.attrs.get("UpdateStatus") or {}).get("StartedAt")
        self.client.api.update_service(
            existing.id, existing.version, **_update_kwargs(spec), fetch_current_spec=False
        )
        self._wait_update(existing, before, timeout)
        if scaled:  # new tasks, which no rolling update waits for
            self._wait_running(role, spec, timeout)
        return True

    # --- commands ----------------------------------------------------------
    def up(self, service_image: str) -> str:
        """Bring everything up (or leave it as it is); returns the public URL."""
        self.state.prepare()
        self.ensure_swarm()
        image_id = self.image_id(service_image)
        topology = self.topology(image_id)
        self._ensure_network(topology)
        self._ensure_volumes(topology)
        specs = self.desired_specs(image_id)
        for role in START_ORDER:
            if role == "api":
                self._migrate()
            if role not in specs:
                self._remove_service(role)
                continue
            try:
                self.apply(role, specs[role])
            except RolloutError as error:
                kept = "the previous spec keeps serving" if role == "api" else "nothing changed"
                raise RolloutError(f"{specs[role]['Name']} not updated ({kept}): {error}") from None
        self.state.record_rollout(image_id)
        self._prune_objects()
        self._wait_for_url(topology.public_url + "/health")
        return topology.public_url

    def rollout(self, service_image: str) -> str:
        """Replace the replicas with `service_image`: the engine's health-gated rolling
        update, which it rolls back itself when a new task fails."""
        self.require_running()
        image_id = self.image_id(service_image)
        spec = self.desired_specs(image_id)["api"]
        self.say(f"rolling out {_short(service_image)} to {spec['Name']}")
        running = sum(1 for task in self.tasks("api") if task.state == "running")
        try:
            self.apply("api", spec)
        except RolloutError as error:
            raise RolloutError(
                f"rollout of {service_image} stopped, its replicas never took traffic "
                f"({running} replicas of the previous image keep serving): {error}"
            ) from None
        self.state.record_rollout(image_id)
        self._prune_objects()
        self.say(f"{spec['Name']} serves {_short(service_image)}")
        return image_id

    def rollback(self) -> str:
        """Redeploy the image that ran before the last rollout."""
        history = self.state.history()
        if history.previous_image is None:
            raise RolloutError("no previous image recorded: nothing to roll back to")
        self.rollout(history.previous_image)
        return history.previous_image

    def rotate_secrets(self, values: Mapping[str, str]) -> None:
        """New values for API keys: new secret versions and a rolling update."""
        self.require_running()
        self.state.set_api_keys(values)
        current = self.state.history().current_image
        if current is None:
            raise RolloutError("no image recorded: run `ops local up` first")
        self.apply("api", self.desired_specs(current)["api"])
        self._prune_objects()

    def _remove_service(self, role: str) -> None:
        """A service the topology no longer has (a stand-in whose source got a key)."""
        service = self.service(role)
        if service is not None:
            self.say(f"removing {service.name}")
            service.remove()  # type: ignore[no-untyped-call]

    def require_running(self) -> None:
        if self.service("proxy") is None or self.service("api") is None:
            raise RolloutError(
                f"the {self.config.environment!r} topology is not running: "
                f"start it with `ops local --env {self.config.environment} up`"
            )

    def _wait_for_url(self, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                response = httpx.get(url, timeout=2)
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}"
            except httpx.HTTPError as error:
                last = type(error).__name__
            time.sleep(0.25)
        raise RolloutError(f"{url} did not answer 200 within {timeout}s (last: {last})")

    def _migrate(self) -> None:
        stored = self.state.secrets()
        admin_url = (
            f"postgresql://postgres:{stored['POSTGRES_PASSWORD']}@127.0.0.1:"
            f"{self.config.postgres_port}/{LOCAL_DATABASE}"
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                applied = migrations.apply(admin_url)
                break
            except psycopg.OperationalError as error:
                if time.monotonic() > deadline:
                    # psycopg's message names host and port, never the password.
                    raise RolloutError(f"cannot reach the local Postgres: {error}") from None
                time.sleep(0.5)
        migrations.set_app_role_password(admin_url, stored["APP_DB_PASSWORD"])
        if applied:
            self.say(f"applied migrations: {', '.join(applied)}")

    def down(self, *, volumes: bool = False) -> list[str]:
        """Remove the services, containers, network, secrets and configs; the
        volumes only if asked."""
        removed: list[str] = []
        environment = self.config.environment
        filters = _labels_filter(environment)
        if (self.client.info().get("Swarm") or {}).get("LocalNodeState") == "active":
            services = self.client.services.list(filters=filters)
            # The proxy first, so nothing is routed to a replica that is going away.
            services.sort(key=lambda svc: svc.attrs["Spec"]["Labels"].get(ROLE_LABEL) != "proxy")
            for service in services:
                service.remove()  # type: ignore[no-untyped-call]
                removed.append(str(service.name))
        for container in self.client.containers.list(all=True, filters=filters):
            # The engine removes task containers of removed services by itself, too.
            with contextlib.suppress(NotFound, APIError):
                container.remove(force=True)
                removed.append(str(container.name))
        self._wait_containers_gone()
        topology = self.topology()
        self._remove_network(topology.network.name)
        if (self.client.info().get("Swarm") or {}).get("LocalNodeState") == "active":
            self._prune_objects()
        if volumes:
            for name in topology.volumes:
                try:
                    self.client.volumes.get(name).remove(force=True)
                    removed.append(name)
                except NotFound:
                    pass
            # The passwords belong to the database that is gone.
            self.state.forget_database_passwords()
        return removed

    def _remove_network(self, name: str, timeout: float = 60) -> None:
        """Remove the overlay network and wait until the swarm has forgotten it: a
        network being removed still answers by name for a moment."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.client.networks.get(name).remove()
            except NotFound:
                return
            except APIError as error:
                if time.monotonic() > deadline:
                    raise RolloutError(f"network {name} not removed: {error.explanation}") from None
            time.sleep(0.5)

    def _wait_containers_gone(self, timeout: float = 60) -> None:
        """Task containers outlive their service for their stop grace period."""
        deadline = time.monotonic() + timeout
        # Task containers carry their service's labels.
        project = _labels_filter(self.config.environment)
        while time.monotonic() < deadline:
            left = self.client.containers.list(all=True, filters=project)
            if not left:
                return
            time.sleep(0.5)

    def containers(self, role: str) -> list[Container]:
        """The containers of a role's running tasks (this engine is the swarm's node)."""
        found = []
        for task in self.tasks(role):
            if task.desired == "running" and task.state == "running" and task.container_id:
                try:
                    found.append(self.client.containers.get(task.container_id))
                except NotFound:
                    continue
        return found

    def update_status(self, role: str) -> dict[str, str]:
        """The engine's account of the last update: state, message, when it started."""
        service = self.service(role)
        if service is None:
            return {}
        status = service.attrs.get("UpdateStatus") or {}
        return {key.lower(): str(value) for key, value in status.items()}

    def nodes(self) -> list[dict[str, str]]:
        """The swarm's nodes: id, hostname, role, availability and state."""
        return read_nodes(self.client)

    def status(self) -> list[TaskStatus]:
        return self.tasks()
