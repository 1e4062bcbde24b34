"""Deploys: the jobsearch API, for one stack (staging, prod, or a developer's dev).

- the container host: a swarm of `nodes` machines (existing servers over SSH,
  or Hetzner Cloud VMs on a private network), or (dev) this machine's Docker
  engine;
- the cache database's schema (versioned migrations) and the service's own
  least-privilege login, before any container changes;
- the service, as infra/topology.py describes it, on Docker Swarm mode: an
  overlay network, Docker secrets and configs, and the swarm services (the
  API's replicas by image digest, Redis, and Caddy with automatic HTTPS),
  whose rollouts and rollbacks the engine runs;
- the API's DNS record, external checks and alerts (with the managers'
  replicas heartbeat), and (optional) the frontend's BACKEND_URL.

Images are never built here. Staging runs the digest its config names; prod
runs what staging runs (promoteFrom), unless imageRef overrides it.
"""

from __future__ import annotations

from typing import Any

import pulumi

from infra.components.database import Database, DatabaseArgs
from infra.components.domain import Domain, DomainArgs, record_type
from infra.components.frontend import Frontend, FrontendArgs
from infra.components.host import Host, HostArgs, RegistryLogin
from infra.components.monitoring import Monitoring, MonitoringArgs, SentryAlerting
from infra.components.replica_watch import ReplicaWatch, ReplicaWatchArgs
from infra.components.service import Service, ServiceArgs
from infra.config.images import registry_host, resolve_images
from infra.config.load import PulumiConfigSource, load, secret
from infra.config.model import KEYS_BY_NAME, StackConfig
from infra.config.problems import ConfigError
from infra.promotion import image_outputs
from infra.separation import export as separation_export
from infra.separation import refuse_shared, separated_values
from infra.topology import describe


def _registry(config: StackConfig, service_image: str) -> RegistryLogin | None:
    if config.registry_password is None:
        return None
    address = registry_host(service_image)
    if address is None:
        key = KEYS_BY_NAME["registryUsername"]
        raise ConfigError(
            f"{key.full_name} is set, but {service_image} names no registry to log in to"
        )
    return RegistryLogin(address, config.registry_username, secret(config.registry_password))


def _service_secrets(config: StackConfig, database: Database) -> dict[str, pulumi.Input[str]]:
    secrets: dict[str, pulumi.Input[str]] = {"DATABASE_URL": database.app_database_url}
    secrets.update({name: secret(value) for name, value in config.service_secrets().items()})
    return secrets


async def main() -> dict[str, Any]:
    config = load(pulumi.get_stack(), PulumiConfigSource())
    images = await resolve_images(config)
    if images.reference is not None:
        # Before any resource: a promoting stack shares no database or API key with its source.
        await refuse_shared(config, images.reference, images.source)
    topology = describe(config.topology_spec(images.images))
    registry = _registry(config, images.images.service)

    host = Host(
        "host",
        HostArgs(
            mode=config.host_mode,
            environment=config.environment,
            ssh_user=config.ssh_user,
            ssh_port=config.ssh_port,
            address=config.host_address,
            host_key=config.host_key,
            servers=config.existing_servers() if config.host_mode == "existing" else (),
            nodes=config.nodes,
            ssh_public_key=config.ssh_public_key,
            smoke_public_key=config.smoke_ssh_public_key,
            server_type=config.hcloud_server_type,
            location=config.hcloud_location,
            image=config.hcloud_image,
            hcloud_token=secret(config.hcloud_token) if config.hcloud_token else None,
            public_ports=(config.http_port, config.https_port),
            docker_host=config.docker_host,
            registry=registry,
            protect=config.environment == "prod",
        ),
    )
    database = Database(
        "database",
        DatabaseArgs(
            admin_url=secret(config.database_url), app_password=secret(config.app_db_password)
        ),
    )
    service = Service(
        "service",
        ServiceArgs(
            topology=topology,
            host=host,
            secrets=_service_secrets(config, database),
            prerequisites=[database],
            registry=registry,
        ),
    )
    url = config.public_url(host.address)

    if config.domain and config.cloudflare_zone_id and config.cloudflare_api_token:
        Domain(
            "domain",
            DomainArgs(
                zone_id=config.cloudflare_zone_id,
                hostname=config.domain,
                address=host.address,
                address_type=host.address.apply(record_type),
                api_token=secret(config.cloudflare_api_token),
                environment=config.environment,
            ),
        )
    monitoring = None
    if config.monitored and config.checkly_api_key is not None:
        heartbeat = None
        if config.host_mode != "local":
            heartbeat = secret(config.heartbeat_token())
            ReplicaWatch(
                "replica-watch",
                ReplicaWatchArgs(
                    host=host,
                    environment=config.environment,
                    ping_token=heartbeat,
                    after=tuple(service.services.values()),
                ),
            )
        monitoring = Monitoring(
            "monitoring",
            MonitoringArgs(
                environment=config.environment,
                app_env=config.app_env,
                domain=config.domain,
                https_port=config.https_port,
                locations=config.checkly_locations,
                account_id=config.checkly_account_id,
                api_key=secret(config.checkly_api_key),
                emails=config.alert_emails,
                webhook_url=secret(config.alert_webhook_url) if config.alert_webhook_url else None,
                runbook_base_url=config.runbook_base_url,
                sentry=SentryAlerting(
                    organization=config.sentry_organization,
                    project=config.sentry_project,
                    team_id=config.sentry_team_id,
                    auth_token=secret(config.sentry_auth_token),
                )
                if config.sentry_alerting and config.sentry_auth_token is not None
                else None,
                heartbeat_token=heartbeat,
            ),
        )
    if config.frontend_link and config.vercel_api_token is not None:
        Frontend(
            "frontend",
            FrontendArgs(
                environment=config.environment,
                project_id=config.vercel_project_id,
                team_id=config.vercel_team_id,
                api_token=secret(config.vercel_api_token),
                backend_url=url,
                backend_api_key=secret(key) if (key := config.frontend_backend_key()) else None,
            ),
        )

    # Outputs are never secret: `ops` and the deploy workflow read them.
    return {
        "environment": config.environment,
        "url": url,
        "host": host.address,
        "host_key": host.host_key,
        "docker_host": host.docker_host,
        # Every node's public address, the first manager first (existing: as configured).
        "nodes": pulumi.Output.all(*[node.address for node in host.nodes])
        if host.nodes
        else [host.address],
        # image_ref, proxy_image_ref, redis_image_ref, images_from: what a promoting stack reads.
        **image_outputs(images.images, images.source),
        # One-way fingerprints: a stack promoting from this one checks it shares none of them.
        "separation": separation_export(separated_values(config), pulumi.get_organization()),
        "schema_migrations": database.applied,
        "monitored_alerts": sorted(monitoring.checks) if monitoring is not None else [],
        "service_name": service.api.name,
        "service_network": service.network.name,
    }


pulumi.run(main)
