"""Bring the topology of infra/topology.py up on the local engine, and roll it out.

A rollout follows the topology's docstring: start the next generation of
replicas, wait until Docker reports them healthy, point the proxy at them
(rewrite the Caddyfile, graceful `caddy reload`), let Caddy's active health
checks see them, then stop the old generation, whose stop timeout lets
in-flight requests finish. A generation that never becomes healthy is removed
and nothing else changes.

Every change is decided by comparing what runs with what the topology says
(a fingerprint label per container), so `up` twice changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import docker
import httpx
import psycopg
from docker.errors import APIError, ImageNotFound, NotFound
from docker.models.containers import Container
from docker.types import IPAMConfig, IPAMPool

from infra import migrations
from infra.local.state import LocalConfig, LocalState
from infra.local.translate import container_create_kwargs, create_container
from infra.topology import (
    GENERATION_LABEL,
    LOCAL_DATABASE,
    ROLE_LABEL,
    ContainerSpec,
    HealthCheck,
    Images,
    Topology,
    TopologySpec,
    base_labels,
    describe,
)

FINGERPRINT_LABEL = "org.jobsearch.fingerprint"
# Caddy checks each upstream every second (topology.render_caddyfile): after a
# reload, give it a few rounds before the old generation goes away.
PROXY_SETTLE_SECONDS = 3.0
CADDY_RELOAD = ("caddy", "reload", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile")

Say = Callable[[str], None]


class RolloutError(Exception):
    """A change was refused or failed; the message says why and what was kept."""


class UnhealthyError(Exception):
    pass


@dataclass(frozen=True)
class ContainerStatus:
    name: str
    role: str
    image: str
    state: str
    health: str


def _labels_filter(environment: str, role: str | None = None) -> dict[str, str | list[str] | bool]:
    labels = {**base_labels(environment), **({ROLE_LABEL: role} if role else {})}
    return {"label": [f"{key}={value}" for key, value in labels.items()]}


def _health_timeout(check: HealthCheck) -> float:
    # A little beyond Docker's own verdict, waiting longer changes nothing.
    return check.worst_case_seconds + 15


def _last_output(container: Container, lines: int = 3) -> str:
    logs = container.logs(tail=lines)
    text = logs.decode(errors="replace") if isinstance(logs, bytes) else ""
    return text.strip().replace("\n", " / ")[-300:] or "(none)"


def _health_reason(container: Container) -> str:
    state: dict[str, Any] = container.attrs.get("State", {})
    if state.get("Status") in ("exited", "dead", "restarting"):
        return (
            f"{container.name} exited with code {state.get('ExitCode')}; "
            f"last output: {_last_output(container)}"
        )
    log: list[dict[str, Any]] = (state.get("Health") or {}).get("Log") or []
    if not log:
        return f"{container.name} reported no health check result"
    last = log[-1]
    output = str(last.get("Output") or "").strip().replace("\n", " / ") or "(no output)"
    return (
        f"{container.name} health check exited {last.get('ExitCode')}: {output}; "
        f"last output of the container: {_last_output(container)}"
    )


def wait_healthy(
    containers: Iterable[Container], check: HealthCheck, timeout: float | None = None
) -> None:
    """Return when every container is healthy; raise UnhealthyError as soon as
    one is unhealthy or exits, or when the time is up."""
    pending = list(containers)
    limit = timeout if timeout is not None else _health_timeout(check)
    deadline = time.monotonic() + limit
    while pending:
        for container in list(pending):
            container.reload()
            state = container.attrs.get("State", {})
            health = (state.get("Health") or {}).get("Status")
            if state.get("Status") in ("exited", "dead", "restarting") or health == "unhealthy":
                raise UnhealthyError(_health_reason(container))
            if health == "healthy":
                pending.remove(container)
        if pending and time.monotonic() > deadline:
            raise UnhealthyError(
                f"still not healthy after {limit:.0f}s: {_health_reason(pending[0])}"
            )
        if pending:
            time.sleep(0.5)


def _short(image: str) -> str:
    """An image id as `docker images` shows it; a name as it is."""
    return image.removeprefix("sha256:")[:12] if image.startswith("sha256:") else image


def _fingerprint(kwargs: Mapping[str, Any], image_id: str) -> str:
    # Secrets are part of what a container runs with, so a new key recreates it;
    # only a hash of them lands in the label.
    material = json.dumps({"kwargs": kwargs, "image_id": image_id}, sort_keys=True, default=str)
    return hashlib.sha256(material.encode()).hexdigest()[:16]


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
                images=Images(
                    service=service_image,
                    proxy=config.proxy_image,
                    redis=config.redis_image,
                    postgres=config.postgres_image,
                ),
                replicas=config.replicas,
                workers=config.workers,
                http_port=config.http_port,
                bind_address="127.0.0.1",
                settings=dict(config.settings),
                state_dir=str(self.state.directory),
                subnet_octet=config.subnet_octet,
                local_datastores=True,
                postgres_host_port=config.postgres_port,
            )
        )

    def container_secrets(self) -> dict[str, str]:
        stored = self.state.secrets()
        app_password = stored["APP_DB_PASSWORD"]
        container_secrets = {
            name: value for name, value in stored.items() if name != "APP_DB_PASSWORD"
        }
        container_secrets["DATABASE_URL"] = (
            f"postgresql://jobsearch_app:{app_password}@postgres:5432/{LOCAL_DATABASE}"
        )
        return container_secrets

    # --- docker objects --------------------------------------------------
    def image_id(self, reference: str) -> str:
        try:
            return str(self.client.images.get(reference).id)
        except ImageNotFound:
            pass
        self.say(f"pulling {reference}")
        try:
            return str(self.client.images.pull(reference).id)
        except (APIError, NotFound) as error:
            raise RolloutError(
                f"image {reference} is not on this engine and cannot be pulled "
                f"({error.explanation}); on a machine with no registry, "
                "run `ops local up --images debian`"
            ) from None

    def _container(self, name: str) -> Container | None:
        try:
            return self.client.containers.get(name)
        except NotFound:
            return None

    def _ensure_network(self, topology: Topology) -> None:
        spec = topology.network
        try:
            network = self.client.networks.get(spec.name)
        except NotFound:
            pool = IPAMPool(subnet=spec.subnet, gateway=spec.gateway, iprange=spec.dynamic_range)
            self.client.networks.create(
                spec.name,
                driver="bridge",
                ipam=IPAMConfig(pool_configs=[pool]),
                internal=spec.internal,
                labels=base_labels(self.config.environment),
            )
            return
        pools = [
            (item.get("Subnet"), item.get("IPRange") or None)
            for item in network.attrs.get("IPAM", {}).get("Config") or []
        ]
        if (spec.subnet, spec.dynamic_range) not in pools:
            raise RolloutError(
                f"network {spec.name} exists with address pools {pools}, "
                f"not {spec.subnet} (dynamic range {spec.dynamic_range}): "
                f"remove it with `ops local --env {self.config.environment} down`"
            )

    def _ensure_volumes(self, topology: Topology) -> None:
        for name in topology.volumes:
            try:
                self.client.volumes.get(name)
            except NotFound:
                self.client.volumes.create(
                    name,
                    labels=base_labels(self.config.environment),
                )

    def _ensure_container(self, spec: ContainerSpec, topology: Topology) -> tuple[Container, bool]:
        """Run `spec` as described; returns the container and whether it changed."""
        kwargs = container_create_kwargs(
            spec, self.container_secrets(), network=topology.network.name
        )
        fingerprint = _fingerprint(kwargs, self.image_id(spec.image))
        existing = self._container(spec.name)
        if existing is not None and existing.labels.get(FINGERPRINT_LABEL) == fingerprint:
            if existing.status != "running":
                existing.start()
                return existing, True
            return existing, False
        if existing is not None:
            self.say(f"replacing {spec.name} (its description changed)")
            existing.stop(timeout=spec.stop_timeout_seconds)
            existing.remove(force=True)
        kwargs["labels"] = {**kwargs["labels"], FINGERPRINT_LABEL: fingerprint}
        container = create_container(self.client, kwargs)
        container.start()
        return container, True

    def api_containers(self) -> list[Container]:
        found = self.client.containers.list(
            all=True, filters=_labels_filter(self.config.environment, role="api")
        )
        return sorted(found, key=lambda container: container.name or "")

    def _generation_of(self, container: Container) -> int:
        try:
            return int(container.labels.get(GENERATION_LABEL, "0"))
        except ValueError:
            return 0

    # --- the proxy -------------------------------------------------------
    def _write_caddyfile(self, topology: Topology, aliases: tuple[str, ...]) -> bool:
        """Write the Caddyfile for these upstreams; returns whether it changed."""
        content = topology.caddyfile(aliases)
        path = self.state.caddyfile
        if path.exists() and path.read_text() == content:
            return False
        temporary = path.with_suffix(".tmp")
        temporary.write_text(content)
        temporary.chmod(0o644)
        # The proxy mounts the directory, so a rename is seen whole.
        temporary.replace(path)
        return True

    def _reload_proxy(self, proxy: Container) -> None:
        result = proxy.exec_run(list(CADDY_RELOAD))
        if result.exit_code != 0:
            raw = result.output if isinstance(result.output, bytes) else b""
            output = raw.decode(errors="replace").strip().splitlines()[-2:]
            raise RolloutError(f"caddy reload failed in {proxy.name}: {' / '.join(output)}")

    def _point_proxy_at(self, topology: Topology, aliases: tuple[str, ...]) -> None:
        previous = self.state.caddyfile.read_text() if self.state.caddyfile.exists() else None
        changed = self._write_caddyfile(topology, aliases)
        proxy = self._container(topology.proxy.name)
        if proxy is None or proxy.status != "running" or not changed:
            return
        try:
            self._reload_proxy(proxy)
        except RolloutError:
            if previous is not None:
                self.state.caddyfile.write_text(previous)
            raise

    # --- commands --------------------------------------------------------
    def up(self, service_image: str) -> str:
        """Bring everything up (or leave it as it is); returns the public URL."""
        self.state.prepare()
        topology = self.topology(service_image)
        self._ensure_network(topology)
        self._ensure_volumes(topology)

        datastores = []
        for spec in topology.datastores:
            container, changed = self._ensure_container(spec, topology)
            if changed:
                self.say(f"started {spec.name}")
            datastores.append((container, spec))
        for container, spec in datastores:
            self._wait(container, spec)
        self._migrate()

        if not self._replicas_match(topology, service_image):
            self.rollout(service_image)
        else:
            self.state.record_rollout(self.image_id(service_image))
            self.say(f"replicas already run {_short(service_image)}")

        current = self.api_containers()
        generation = str(max(self._generation_of(container) for container in current))
        aliases = tuple(
            alias for replica in topology.replicas(generation) for alias in replica.aliases
        )
        self._point_proxy_at(topology, aliases)
        proxy, changed = self._ensure_container(topology.proxy, topology)
        if changed:
            self.say(f"started {topology.proxy.name}")
        self._wait(proxy, topology.proxy)
        for container in current:
            spec = topology.replicas(generation)[0]
            self._wait(container, spec)
        self._wait_for_url(topology.public_url + "/health")
        return topology.public_url

    def _wait(self, container: Container, spec: ContainerSpec) -> None:
        try:
            wait_healthy([container], spec.healthcheck)
        except UnhealthyError as error:
            raise RolloutError(str(error)) from None

    def _wait_for_url(self, url: str, timeout: float = 30) -> None:
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
        deadline = time.monotonic() + 30
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

    def _replicas_match(self, topology: Topology, service_image: str) -> bool:
        current = self.api_containers()
        generations = {self._generation_of(container) for container in current}
        if len(generations) != 1 or len(current) != self.config.replicas:
            return False
        generation = str(generations.pop())
        secrets = self.container_secrets()
        image_id = self.image_id(service_image)
        by_name = {container.name: container for container in current}
        for spec in topology.replicas(generation):
            container = by_name.get(spec.name)
            kwargs = container_create_kwargs(spec, secrets, network=topology.network.name)
            if container is None or container.status != "running":
                return False
            if container.labels.get(FINGERPRINT_LABEL) != _fingerprint(kwargs, image_id):
                return False
        return True

    def require_running(self) -> None:
        proxy = self._container(self.topology().proxy.name)
        if proxy is None or proxy.status != "running" or not self.api_containers():
            raise RolloutError(
                f"the {self.config.environment!r} topology is not running: "
                f"start it with `ops local --env {self.config.environment} up`"
            )

    def rollout(self, service_image: str) -> str:
        """Replace the running replicas with ones of `service_image`, gated by health."""
        image_id = self.image_id(service_image)
        topology = self.topology(service_image)
        old = self.api_containers()
        generation = str(max((self._generation_of(container) for container in old), default=0) + 1)
        specs = topology.replicas(generation)
        self.say(
            f"starting generation {generation}: {len(specs)} replicas of {_short(service_image)}"
        )
        started: list[Container] = []
        try:
            for spec in specs:
                container, _ = self._ensure_container(spec, topology)
                started.append(container)
            wait_healthy(started, specs[0].healthcheck)
            aliases = tuple(alias for spec in specs for alias in spec.aliases)
            self._point_proxy_at(topology, aliases)
        except (UnhealthyError, RolloutError, APIError) as error:
            for container in started:
                container.remove(force=True)
            reason = error.explanation if isinstance(error, APIError) else str(error)
            kept = (
                f"{len(old)} replicas of the previous image keep serving"
                if old
                else "nothing was running"
            )
            raise RolloutError(
                f"rollout of {service_image} stopped, its replicas never took traffic "
                f"({kept}): {reason}"
            ) from None
        if old:
            time.sleep(PROXY_SETTLE_SECONDS)
            for container in old:
                self.say(f"draining {container.name}")
                container.stop(timeout=specs[0].stop_timeout_seconds)
                container.remove(force=True)
        self.state.record_rollout(image_id)
        self.say(f"generation {generation} serves {_short(service_image)}")
        return generation

    def rollback(self) -> str:
        history = self.state.history()
        if history.previous_image is None:
            raise RolloutError("no previous image recorded: nothing to roll back to")
        self.rollout(history.previous_image)
        return history.previous_image

    def down(self, *, volumes: bool = False) -> list[str]:
        """Remove the containers and the network; the database volume only if asked."""
        removed = []
        topology = self.topology()
        stop_timeouts: dict[str, int] = {
            spec.role: spec.stop_timeout_seconds for spec in (topology.proxy, *topology.datastores)
        }
        containers = self.client.containers.list(
            all=True, filters=_labels_filter(self.config.environment)
        )
        # The proxy first, so nothing is routed to a replica that is going away.
        containers.sort(key=lambda container: container.labels.get(ROLE_LABEL) != "proxy")
        for container in containers:
            role = container.labels.get(ROLE_LABEL, "")
            container.stop(timeout=stop_timeouts.get(role, 30))
            container.remove(force=True)
            removed.append(container.name or container.id or "")
        try:
            self.client.networks.get(topology.network.name).remove()
        except NotFound:
            pass
        except APIError as error:
            raise RolloutError(
                f"network {topology.network.name} not removed: {error.explanation}"
            ) from None
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

    def status(self) -> list[ContainerStatus]:
        found = self.client.containers.list(
            all=True, filters=_labels_filter(self.config.environment)
        )
        statuses = []
        for container in sorted(found, key=lambda item: item.name or ""):
            state = container.attrs.get("State", {})
            statuses.append(
                ContainerStatus(
                    name=container.name or "",
                    role=container.labels.get(ROLE_LABEL, ""),
                    image=str(container.attrs.get("Image", ""))[:19],
                    state=str(state.get("Status", "")),
                    health=str((state.get("Health") or {}).get("Status", "none")),
                )
            )
        return statuses
