"""Every stack config key, declared once: a typed field of `StackConfig`.

Each field's alias is the key (camelCase), and `key()`/`setting()` give it its
description, example and default (infra/config/keys.py); `KEYS` is derived from
them, and so are Pulumi.yaml's `config:` block (`make generate`) and the
service settings the stack hands the service. Secrets are SecretStr: printing
the object shows no value.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from collections.abc import Mapping
from typing import Literal

import pulumi
from pydantic import BaseModel, ConfigDict, SecretStr, field_validator
from pydantic.alias_generators import to_camel

from infra.alerts import DEFAULT_RUNBOOK_BASE_URL
from infra.config.database import MIN_APP_PASSWORD_LENGTH, database_url_problem
from infra.config.hosts import (
    EMAIL,
    HOST_NAME,
    MAX_NODES,
    SSH_KEY,
    ExistingServer,
    HostMode,
    NodeRole,
    parse_server,
)
from infra.config.keys import Key, OptionalSecret, key, keys_of, setting
from infra.config.standins import refuse_stand_in_keys
from infra.promotion import PROMOTE_KEY, SLOTS
from infra.topology import Images, TopologySpec, app_env, https_origin, manager_count

StackEnvironment = Literal["dev", "staging", "prod"]
STACK_ENVIRONMENTS: tuple[StackEnvironment, ...] = ("dev", "staging", "prod")


class StackConfig(BaseModel):
    """Every key, typed, in the order Pulumi.yaml declares them."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )

    stack: str
    environment: StackEnvironment = key(
        "", example="prod", description="dev, staging or prod; empty means the stack's name."
    )
    # Images: never built by a stack.
    image_ref: str = key(
        "",
        example="'<registry/owner/jobsearch-api@sha256:64hex>'",
        description="Service image pinned by digest (name@sha256:<64 hex>), set by the deploy "
        "workflow. In a stack that promotes (promoteFrom), setting it is an emergency override.",
    )
    proxy_image: str = key(
        "",
        example="'<caddy:2@sha256:64hex>'",
        description="Caddy image pinned by digest. Ignored when promoting: the source stack's "
        "is used.",
    )
    redis_image: str = key(
        "",
        example="'<redis:7@sha256:64hex>'",
        description="Redis image pinned by digest. Ignored when promoting: the source stack's "
        "is used.",
    )
    promote_from: str = key(
        "",
        example="staging",
        description="Stack whose exported images this stack runs (prod: staging, or "
        "<org>/<project>/<stack>). Empty: images come from this stack's imageRef, proxyImage "
        "and redisImage.",
    )
    registry_username: str = key(
        "",
        example="<user>",
        description="User for pulling private images from the service image's registry; "
        "empty: anonymous.",
    )
    registry_password: OptionalSecret = key(
        None, example="<token>", description="Token for registryUsername."
    )
    # What runs on the host (infra/topology.py).
    replicas: int = key(2, example="2", description="Service replicas (prod: at least 2).")
    workers: int = key(2, example="2", description="Uvicorn workers per replica.")
    service_memory_mb: int = key(
        512, example="512", description="Memory limit of each replica, in MiB."
    )
    subnet_octet: int = key(
        231,
        example="231",
        description="Second octet of the private network 10.N.0.0/24 on the host.",
    )
    http_port: int = key(
        80,
        example="80",
        description="Host port for HTTP (redirects to HTTPS when a domain is set).",
    )
    https_port: int = key(443, example="443", description="Host port for HTTPS.")
    bind_address: str = key(
        "0.0.0.0",  # noqa: S104 - the public entry point
        example="0.0.0.0",  # noqa: S104
        description="Host address the proxy's ports are published on.",
    )
    # Service settings: defaults from service/jobsearch/settings.py, which validates them here too.
    log_level: str = setting("LOG_LEVEL", example="INFO")
    rate_limit: str = setting("RATE_LIMIT", example="30/minute")
    cache_ttl_minutes: int = setting("CACHE_TTL_MINUTES", example="60")
    jsearch_daily_budget: str = setting(
        "JSEARCH_DAILY_BUDGET",
        example="500",
        description="JSEARCH_DAILY_BUDGET of the service: searches sent to JSearch per UTC day; "
        "empty: unlimited.",
    )
    theirstack_daily_budget: str = setting(
        "THEIRSTACK_DAILY_BUDGET",
        example="200",
        description="THEIRSTACK_DAILY_BUDGET of the service: searches sent to TheirStack per UTC "
        "day; empty: unlimited.",
    )
    frontend_origins: tuple[str, ...] = setting(
        "CORS_ORIGINS",
        example="https://app.example.com",
        description="Browser origins allowed to call the API (CORS_ORIGINS); the frontend link "
        "uses them too.",
    )
    rapid_api_key: OptionalSecret = setting(
        "RAPID_API_KEY",
        example="<key>",
        description="RapidAPI key for JSearch; empty turns the source off.",
    )
    theirstack_api_key: OptionalSecret = setting(
        "THEIRSTACK_API_KEY",
        example="<token>",
        description="TheirStack API token; empty turns the source off.",
    )
    sentry_dsn: OptionalSecret = setting(
        "SENTRY_DSN",
        example="<dsn>",
        description="SENTRY_DSN of the service; empty turns Sentry off.",
    )
    frontend_api_keys: OptionalSecret = setting(
        "FRONTEND_API_KEYS",
        example="<key>",
        description="FRONTEND_API_KEYS of the service: comma-separated keys the frontend sends as "
        "a Bearer token (new,old while rotating; the frontend link gives Vercel the first); "
        "empty: the API is open.",
    )
    # Database.
    database_url: SecretStr = key(
        example="'postgresql://postgres.<ref>:<password>@aws-0-<region>.pooler.supabase.com:5432"
        "/postgres'",
        description="Postgres connection string with a role that can migrate (Supabase: the "
        "postgres user, direct or session-mode pooler on port 5432, never the transaction "
        "pooler on 6543).",
    )
    app_db_password: SecretStr = key(
        example='"$(openssl rand -base64 32)"',
        description="Password the platform gives the service's role jobsearch_app (at least 24 "
        "characters).",
    )
    # The container host.
    host_mode: HostMode = key(
        "existing",
        example="existing",
        description="existing (a server reached over SSH), hcloud (a Hetzner VM this stack "
        "creates) or local (this machine's Docker engine; dev only).",
    )
    host_address: str = key(
        "",
        example="<203.0.113.10>",
        description="existing: the server's IP address or DNS name.",
    )
    host_key: str = key(
        "",
        example="'ssh-ed25519 <base64>'",
        description="existing: the server's SSH host key, as printed by ssh-keyscan -t ed25519 "
        "<host>.",
    )
    nodes: int = key(
        1,
        example="3",
        description=f"Swarm nodes (1 to {MAX_NODES}; prod: at least 2). hcloud: the stack creates "
        "them on a private network, with 3 managers from 3 nodes; existing: as many as servers "
        "lists.",
    )
    servers: tuple[str, ...] = key(
        (),
        example="'<203.0.113.10> ssh-ed25519 <base64> manager'",
        description="existing, more than one node: each server as 'address hostKey "
        "[manager|worker]' (hostKey as ssh-keyscan -t ed25519 prints it), the first a manager; "
        "replaces hostAddress and hostKey.",
    )
    ssh_user: str = key(
        "deploy",
        example="deploy",
        description="User that deploys over SSH; it must be in the docker group.",
    )
    ssh_port: int = key(22, example="22", description="SSH port of the host.")
    ssh_public_key: str = key(
        "",
        example="'ssh-ed25519 <base64> deploy'",
        description="hcloud: public key the deploy user logs in with.",
    )
    smoke_ssh_public_key: str = key(
        "",
        example="'ssh-ed25519 <base64> smoke'",
        description="hcloud: public key of the smoke checks' restricted smoke user, on every "
        "node; empty: no such user.",
    )
    hcloud_server_type: str = key("cx22", example="cx22", description="hcloud: server type.")
    hcloud_location: str = key("fsn1", example="fsn1", description="hcloud: location.")
    hcloud_image: str = key(
        "debian-12", example="debian-12", description="hcloud: operating system image."
    )
    hcloud_token: OptionalSecret = key(
        None, example="<token>", description="hcloud: API token of the Hetzner Cloud project."
    )
    docker_host: str = key(
        "unix:///var/run/docker.sock",
        example="unix:///var/run/docker.sock",
        description="local: the Docker engine to use.",
    )
    # Domain and TLS.
    domain: str = key(
        "",
        example="<api.example.com>",
        description="Host name of the API; set: automatic HTTPS with HSTS.",
    )
    acme_email: str = key(
        "",
        example="<ops@example.com>",
        description="Contact address for the certificate authority.",
    )
    cloudflare_zone_id: str = key(
        "", example="<zone id>", description="Cloudflare zone holding the domain's DNS record."
    )
    cloudflare_api_token: OptionalSecret = key(
        None, example="<token>", description="Cloudflare token with DNS edit on that zone."
    )
    # Monitoring and alerts.
    checkly_account_id: str = key(
        "", example="<account id>", description="Checkly account that runs the external checks."
    )
    checkly_api_key: OptionalSecret = key(None, example="<key>", description="Checkly API key.")
    checkly_locations: tuple[str, ...] = key(
        ("eu-central-1", "us-east-1"),
        example="eu-central-1",
        description="Checkly locations (two or more) that probe the API.",
    )
    alert_emails: tuple[str, ...] = key(
        (), example="<oncall@example.com>", description="Addresses that receive alerts."
    )
    alert_webhook_url: OptionalSecret = key(
        None,
        example="<https://hooks.example.com/...>",
        description="Webhook that receives alerts as JSON.",
    )
    runbook_base_url: str = key(
        DEFAULT_RUNBOOK_BASE_URL,
        example=DEFAULT_RUNBOOK_BASE_URL,
        description="Where the runbooks are published; each alert links one.",
    )
    sentry_organization: str = key(
        "", example="<org>", description="Sentry organization slug; set: error-rate alert."
    )
    sentry_project: str = key(
        "", example="<project>", description="Sentry project slug of the service."
    )
    sentry_team_id: str = key(
        "", example="<team id>", description="Sentry team emailed by the error-rate alert."
    )
    sentry_auth_token: OptionalSecret = key(
        None, example="<token>", description="Sentry auth token with alerts:write."
    )
    # The frontend link (off by default).
    frontend_link: bool = key(
        False, example="true", description="Set BACKEND_URL on the frontend's Vercel project."
    )
    vercel_project_id: str = key(
        "", example="<prj_...>", description="Vercel project of the frontend."
    )
    vercel_team_id: str = key(
        "",
        example="<team_...>",
        description="Vercel team owning the project; empty: personal account.",
    )
    vercel_api_token: OptionalSecret = key(None, example="<token>", description="Vercel API token.")

    @field_validator("database_url")
    @classmethod
    def _usable_database(cls, value: SecretStr) -> SecretStr:
        problem = database_url_problem(value.get_secret_value())
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("app_db_password")
    @classmethod
    def _long_password(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < MIN_APP_PASSWORD_LENGTH:
            raise ValueError(f"must be at least {MIN_APP_PASSWORD_LENGTH} characters long")
        return value

    @field_validator("nodes")
    @classmethod
    def _node_count(cls, value: int) -> int:
        if not 1 <= value <= MAX_NODES:
            raise ValueError(f"must be between 1 and {MAX_NODES} (got {value})")
        return value

    @field_validator("replicas", "workers")
    @classmethod
    def _at_least_one(cls, value: int) -> int:
        if not 1 <= value <= 32:
            raise ValueError(f"must be between 1 and 32 (got {value})")
        return value

    @field_validator("service_memory_mb")
    @classmethod
    def _enough_memory(cls, value: int) -> int:
        if value < 128:
            raise ValueError(f"must be at least 128 (got {value})")
        return value

    @field_validator("subnet_octet")
    @classmethod
    def _octet(cls, value: int) -> int:
        if not 0 <= value <= 255:
            raise ValueError(f"must be between 0 and 255 (got {value})")
        return value

    @field_validator("http_port", "https_port", "ssh_port")
    @classmethod
    def _port(cls, value: int) -> int:
        if not 1 <= value <= 65535:
            raise ValueError(f"must be a port between 1 and 65535 (got {value})")
        return value

    @field_validator("bind_address")
    @classmethod
    def _ip(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"must be an IP address (got {value!r})") from None
        return value

    @field_validator("domain")
    @classmethod
    def _host_name(cls, value: str) -> str:
        value = value.strip().lower().rstrip(".")
        if value and not HOST_NAME.fullmatch(value):
            raise ValueError(f"must be a host name like api.example.com (got {value!r})")
        return value

    @field_validator("acme_email")
    @classmethod
    def _acme_email(cls, value: str) -> str:
        if value and not EMAIL.fullmatch(value):
            raise ValueError(f"must be an email address (got {value!r})")
        return value

    @field_validator("alert_emails")
    @classmethod
    def _alert_emails(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for address in value:
            if not EMAIL.fullmatch(address):
                raise ValueError(f"{address!r} is not an email address")
        return value

    @field_validator("host_key", "ssh_public_key", "smoke_ssh_public_key")
    @classmethod
    def _ssh_key(cls, value: str) -> str:
        value = value.strip()
        if value and not SSH_KEY.fullmatch(value):
            raise ValueError("must be one OpenSSH key line, like 'ssh-ed25519 AAAA...'")
        return value

    @field_validator("runbook_base_url")
    @classmethod
    def _https_url(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError(f"must be an https:// URL (got {value!r})")
        return value.rstrip("/")

    def existing_servers(self) -> tuple[ExistingServer, ...]:
        """hostMode existing: every server, the first manager first. From `servers`, or the
        one hostAddress and hostKey. A server without a role is a manager if it is among
        the first manager_count(nodes), else a worker."""
        if not self.servers:
            return (ExistingServer(self.host_address, self.host_key, "manager"),)
        managers = manager_count(len(self.servers))
        parsed = []
        for index, entry in enumerate(self.servers):
            server = parse_server(entry)
            if len(entry.split()) == 3:
                role: NodeRole = "manager" if index < managers else "worker"
                server = ExistingServer(server.address, server.host_key, role)
            parsed.append(server)
        return tuple(parsed)

    def heartbeat_token(self) -> SecretStr:
        """The replicas heartbeat's ping token (JobSearchReplicasMissing): a keyed hash, so
        that nobody without appDbPassword can ping it, and stable across runs."""
        key = self.app_db_password.get_secret_value().encode()
        message = f"jobsearch:{self.environment}:replicas-heartbeat".encode()
        return SecretStr(hmac.new(key, message, hashlib.sha256).hexdigest()[:32])

    @property
    def promotes(self) -> bool:
        return bool(self.promote_from)

    @property
    def app_env(self) -> str:
        return app_env(self.environment)

    @property
    def monitored(self) -> bool:
        return bool(self.checkly_account_id)

    @property
    def sentry_alerting(self) -> bool:
        return bool(self.sentry_organization)

    def public_url(self, host_address: pulumi.Input[str]) -> pulumi.Output[str]:
        """Where clients reach the API: the domain over HTTPS, else the host over HTTP."""
        if self.domain:
            return pulumi.Output.from_input(https_origin(self.domain, self.https_port))
        if self.host_mode == "local":
            local = "127.0.0.1" if self.bind_address == "0.0.0.0" else self.bind_address  # noqa: S104
            return pulumi.Output.from_input(f"http://{local}:{self.http_port}")
        return pulumi.Output.concat("http://", host_address, f":{self.http_port}")

    def service_secrets(self) -> dict[str, SecretStr]:
        """The service's secret settings this stack sets (the keys declared with setting())."""
        values = {
            str(declared.setting): getattr(self, declared.field)
            for declared in SETTING_KEYS
            if declared.secret
        }
        return {name: value for name, value in values.items() if value is not None}

    def secrets_fingerprint(self) -> str:
        """A keyed hash of every secret the service receives.

        It changes when any of them does, and without appDbPassword (the key, at
        least 24 characters) it tells nothing about them.
        """
        service = [getattr(self, declared.field) for declared in SETTING_KEYS if declared.secret]
        values = [self.database_url, self.app_db_password, *service]
        message = json.dumps([None if v is None else v.get_secret_value() for v in values])
        key = self.app_db_password.get_secret_value().encode()
        return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()

    def frontend_backend_key(self) -> SecretStr | None:
        """The frontend key the frontend link gives Vercel (BACKEND_API_KEY): the first of
        frontendApiKeys, so that while rotating ("new,old") the frontend gets the new one."""
        if self.frontend_api_keys is None:
            return None
        first = self.frontend_api_keys.get_secret_value().split(",")[0].strip()
        return SecretStr(first) if first else None

    def service_settings(self) -> dict[str, str]:
        """The service's non-secret settings this stack sets (topology adds the rest). A value
        left empty is not set: the service's default holds (a budget: unlimited)."""
        settings = {}
        for declared in SETTING_KEYS:
            if declared.secret or declared.setting is None:
                continue
            value = getattr(self, declared.field)
            if isinstance(value, tuple):
                text = ",".join(item.rstrip("/") for item in value)
            else:
                text = str(value).strip()
            if text:
                settings[declared.setting] = text
        return settings

    def topology_spec(self, images: Images) -> TopologySpec:
        return TopologySpec(
            environment=self.environment,
            images=images,
            replicas=self.replicas,
            workers=self.workers,
            domain=self.domain or None,
            acme_email=self.acme_email or None,
            http_port=self.http_port,
            https_port=self.https_port,
            settings=self.service_settings(),
            subnet_octet=self.subnet_octet,
            service_memory_mb=self.service_memory_mb,
            nodes=self.nodes,
        )


KEYS: tuple[Key, ...] = keys_of(StackConfig)
KEYS_BY_NAME: Mapping[str, Key] = {key.name: key for key in KEYS}
# The keys that set a service setting, in declaration order.
SETTING_KEYS: tuple[Key, ...] = tuple(key for key in KEYS if key.setting is not None)
refuse_stand_in_keys(SETTING_KEYS)
# infra/promotion.py names the image keys and promoteFrom without the Pulumi SDK: each must
# be one of these fields' keys, which the import checks rather than a test.
_UNDECLARED = {PROMOTE_KEY, *(slot.key for slot in SLOTS)} - set(KEYS_BY_NAME)
if _UNDECLARED:
    raise TypeError(f"infra/promotion.py names undeclared keys: {sorted(_UNDECLARED)}")
