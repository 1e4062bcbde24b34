"""The stack's configuration: every key, read once and validated into one typed object.

`KEYS` is the list; Pulumi.yaml declares the same keys with the same types,
descriptions and defaults (tests/infra/pulumi/test_config.py checks that they
agree). `load()` reads them all before any resource exists. Anything missing
or wrong stops the program with one message that names each bad key and the
`pulumi config set` command that fixes it. A secret's value never appears in
that message, in a log or in a stack output.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import unquote, urlsplit

import pulumi
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from infra.alerts import DEFAULT_RUNBOOK_BASE_URL
from infra.image_refs import DIGEST, digest_reference
from infra.topology import PROJECT, Images, TopologySpec, app_env, https_origin, manager_count
from jobsearch.settings import settings_from  # the service's one list of settings

STACK_ENVIRONMENTS = ("dev", "staging", "prod")
# More nodes than this is another project (and another Hetzner quota); the swarm would
# manage it, the firewall and the private subnet's fixed addresses would too.
MAX_NODES = 16
NodeRole = Literal["manager", "worker"]
# The Supavisor transaction pooler: it drops prepared statements between
# transactions, which psycopg relies on (service/jobsearch/settings.py).
TRANSACTION_POOLER_PORT = 6543
APP_ROLE = "jobsearch_app"
MIN_APP_PASSWORD_LENGTH = 24

Kind = Literal["string", "integer", "boolean", "array"]
StackEnvironment = Literal["dev", "staging", "prod"]
HostMode = Literal["existing", "hcloud", "local"]
Default = str | int | bool | tuple[str, ...]


@dataclass(frozen=True)
class ExistingServer:
    """One entry of jobsearch:servers: a server this stack deploys to but does not create."""

    address: str
    host_key: str
    role: NodeRole


def parse_server(entry: str) -> ExistingServer:
    """'address keytype base64 [manager|worker]' (the role is optional: manager for the first
    server, the next two when there are three or more, workers after; see
    existing_servers)."""
    words = entry.split()
    if len(words) not in (3, 4):
        raise ValueError(
            f"{entry!r} is not 'address hostKey [manager|worker]' "
            "(the host key as ssh-keyscan -t ed25519 prints it: type and base64)"
        )
    role = words[3] if len(words) == 4 else ""
    if role not in ("", "manager", "worker"):
        raise ValueError(f"{entry!r}: the role must be manager or worker (got {role!r})")
    return ExistingServer(words[0], f"{words[1]} {words[2]}", role or "worker")  # type: ignore[arg-type]


@dataclass(frozen=True)
class Key:
    """One config key, as Pulumi.yaml declares it."""

    name: str
    kind: Kind
    description: str
    # What to type in the fix command; <angle brackets> mark a placeholder.
    example: str
    # None: every stack must set it (Pulumi.yaml gives no default).
    default: Default | None = None
    secret: bool = False

    @property
    def full_name(self) -> str:
        return f"{PROJECT}:{self.name}"

    def fix(self, stack: str) -> str:
        if self.kind == "array":
            return f"pulumi config set --path '{self.full_name}[0]' {self.example} -s {stack}"
        flag = {"integer": " --type int", "boolean": " --type bool"}.get(self.kind, "")
        if self.secret:
            flag = " --secret"
        return f"pulumi config set{flag} {self.full_name} {self.example} -s {stack}"


_SET_ENCRYPTED = " Secret: set it with --secret."

# fmt: off
KEYS: tuple[Key, ...] = (
    Key("environment", "string",
        "dev, staging or prod; empty means the stack's name.",
        "prod", default=""),
    # Images: never built by a stack.
    Key("imageRef", "string",
        "Service image pinned by digest (name@sha256:<64 hex>), set by the deploy workflow. "
        "In a stack that promotes (promoteFrom), setting it is an emergency override.",
        "'<registry/owner/jobsearch-api@sha256:64hex>'", default=""),
    Key("proxyImage", "string",
        "Caddy image pinned by digest. Ignored when promoting: the source stack's is used.",
        "'<caddy:2@sha256:64hex>'", default=""),
    Key("redisImage", "string",
        "Redis image pinned by digest. Ignored when promoting: the source stack's is used.",
        "'<redis:7@sha256:64hex>'", default=""),
    Key("promoteFrom", "string",
        "Stack whose exported images this stack runs (prod: staging, or <org>/<project>/<stack>)."
        " Empty: images come from this stack's imageRef, proxyImage and redisImage.",
        "staging", default=""),
    Key("registryUsername", "string",
        "User for pulling private images from the service image's registry; empty: anonymous.",
        "<user>", default=""),
    Key("registryPassword", "string",
        "Token for registryUsername." + _SET_ENCRYPTED,
        "<token>", default="", secret=True),
    # What runs on the host (infra/topology.py).
    Key("replicas", "integer",
        "Service replicas (prod: at least 2).",
        "2", default=2),
    Key("workers", "integer",
        "Uvicorn workers per replica.",
        "2", default=2),
    Key("serviceMemoryMb", "integer",
        "Memory limit of each replica, in MiB.",
        "512", default=512),
    Key("stateDir", "string",
        "Host directory for the Caddyfile and Caddy's certificates.",
        "/srv/jobsearch", default="/srv/jobsearch"),
    Key("subnetOctet", "integer",
        "Second octet of the private network 10.N.0.0/24 on the host.",
        "231", default=231),
    Key("httpPort", "integer",
        "Host port for HTTP (redirects to HTTPS when a domain is set).",
        "80", default=80),
    Key("httpsPort", "integer",
        "Host port for HTTPS.",
        "443", default=443),
    Key("bindAddress", "string",
        "Host address the proxy's ports are published on.",
        "0.0.0.0", default="0.0.0.0"),  # noqa: S104 - the public entry point
    # Service settings (service/jobsearch/settings.py validates them here too).
    Key("logLevel", "string",
        "LOG_LEVEL of the service.",
        "INFO", default="INFO"),
    Key("rateLimit", "string",
        "RATE_LIMIT of the service, e.g. 30/minute.",
        "30/minute", default="30/minute"),
    Key("cacheTtlMinutes", "integer",
        "CACHE_TTL_MINUTES of the service.",
        "60", default=60),
    Key("jsearchDailyBudget", "string",
        "JSEARCH_DAILY_BUDGET of the service: searches sent to JSearch per UTC day; empty: "
        "unlimited.",
        "500", default=""),
    Key("theirstackDailyBudget", "string",
        "THEIRSTACK_DAILY_BUDGET of the service: searches sent to TheirStack per UTC day; "
        "empty: unlimited.",
        "200", default=""),
    Key("frontendOrigins", "array",
        "Browser origins allowed to call the API (CORS_ORIGINS); the frontend link uses them "
        "too.",
        "https://app.example.com", default=()),
    Key("rapidApiKey", "string",
        "RapidAPI key for JSearch; empty turns the source off." + _SET_ENCRYPTED,
        "<key>", default="", secret=True),
    Key("theirstackApiKey", "string",
        "TheirStack API token; empty turns the source off." + _SET_ENCRYPTED,
        "<token>", default="", secret=True),
    Key("sentryDsn", "string",
        "SENTRY_DSN of the service; empty turns Sentry off." + _SET_ENCRYPTED,
        "<dsn>", default="", secret=True),
    Key("frontendApiKeys", "string",
        "FRONTEND_API_KEYS of the service: comma-separated keys the frontend sends as a Bearer "
        "token (new,old while rotating; the frontend link gives Vercel the first); empty: the "
        "API is open." + _SET_ENCRYPTED,
        "<key>", default="", secret=True),
    # Database.
    Key("databaseUrl", "string",
        "Postgres connection string with a role that can migrate (Supabase: the postgres "
        "user, direct or session-mode pooler on port 5432, never the transaction pooler on "
        "6543).",
        "'postgresql://postgres.<ref>:<password>@aws-0-<region>.pooler.supabase.com:5432"
        "/postgres'", secret=True),
    Key("appDbPassword", "string",
        "Password the platform gives the service's role jobsearch_app (at least 24 "
        "characters).",
        "\"$(openssl rand -base64 32)\"", secret=True),
    # The container host.
    Key("hostMode", "string",
        "existing (a server reached over SSH), hcloud (a Hetzner VM this stack creates) or "
        "local (this machine's Docker engine; dev only).",
        "existing", default="existing"),
    Key("hostAddress", "string",
        "existing: the server's IP address or DNS name.",
        "<203.0.113.10>", default=""),
    Key("hostKey", "string",
        "existing: the server's SSH host key, as printed by ssh-keyscan -t ed25519 <host>.",
        "'ssh-ed25519 <base64>'", default=""),
    Key("nodes", "integer",
        f"Swarm nodes (1 to {MAX_NODES}; prod: at least 2). hcloud: the stack creates them on a "
        "private network, with 3 managers from 3 nodes; existing: as many as servers lists.",
        "3", default=1),
    Key("servers", "array",
        "existing, more than one node: each server as 'address hostKey [manager|worker]' "
        "(hostKey as ssh-keyscan -t ed25519 prints it), the first a manager; replaces "
        "hostAddress and hostKey.",
        "'<203.0.113.10> ssh-ed25519 <base64> manager'", default=()),
    Key("sshUser", "string",
        "User that deploys over SSH; it must be in the docker group.",
        "deploy", default="deploy"),
    Key("sshPort", "integer",
        "SSH port of the host.",
        "22", default=22),
    Key("sshPublicKey", "string",
        "hcloud: public key the deploy user logs in with.",
        "'ssh-ed25519 <base64> deploy'", default=""),
    Key("smokeSshPublicKey", "string",
        "hcloud: public key of the smoke checks' restricted smoke user, on every node; empty: "
        "no such user.",
        "'ssh-ed25519 <base64> smoke'", default=""),
    Key("hcloudServerType", "string",
        "hcloud: server type.",
        "cx22", default="cx22"),
    Key("hcloudLocation", "string",
        "hcloud: location.",
        "fsn1", default="fsn1"),
    Key("hcloudImage", "string",
        "hcloud: operating system image.",
        "debian-12", default="debian-12"),
    Key("hcloudToken", "string",
        "hcloud: API token of the Hetzner Cloud project." + _SET_ENCRYPTED,
        "<token>", default="", secret=True),
    Key("dockerHost", "string",
        "local: the Docker engine to use.",
        "unix:///var/run/docker.sock", default="unix:///var/run/docker.sock"),
    # Domain and TLS.
    Key("domain", "string",
        "Host name of the API; set: automatic HTTPS with HSTS.",
        "<api.example.com>", default=""),
    Key("acmeEmail", "string",
        "Contact address for the certificate authority.",
        "<ops@example.com>", default=""),
    Key("cloudflareZoneId", "string",
        "Cloudflare zone holding the domain's DNS record.",
        "<zone id>", default=""),
    Key("cloudflareApiToken", "string",
        "Cloudflare token with DNS edit on that zone." + _SET_ENCRYPTED,
        "<token>", default="", secret=True),
    # Monitoring and alerts.
    Key("checklyAccountId", "string",
        "Checkly account that runs the external checks.",
        "<account id>", default=""),
    Key("checklyApiKey", "string",
        "Checkly API key." + _SET_ENCRYPTED,
        "<key>", default="", secret=True),
    Key("checklyLocations", "array",
        "Checkly locations (two or more) that probe the API.",
        "eu-central-1", default=("eu-central-1", "us-east-1")),
    Key("alertEmails", "array",
        "Addresses that receive alerts.",
        "<oncall@example.com>", default=()),
    Key("alertWebhookUrl", "string",
        "Webhook that receives alerts as JSON." + _SET_ENCRYPTED,
        "<https://hooks.example.com/...>", default="", secret=True),
    Key("runbookBaseUrl", "string",
        "Where the runbooks are published; each alert links one.",
        DEFAULT_RUNBOOK_BASE_URL, default=DEFAULT_RUNBOOK_BASE_URL),
    Key("sentryOrganization", "string",
        "Sentry organization slug; set: error-rate alert.",
        "<org>", default=""),
    Key("sentryProject", "string",
        "Sentry project slug of the service.",
        "<project>", default=""),
    Key("sentryTeamId", "string",
        "Sentry team emailed by the error-rate alert.",
        "<team id>", default=""),
    Key("sentryAuthToken", "string",
        "Sentry auth token with alerts:write." + _SET_ENCRYPTED,
        "<token>", default="", secret=True),
    # The frontend link (off by default).
    Key("frontendLink", "boolean",
        "Set BACKEND_URL on the frontend's Vercel project.",
        "true", default=False),
    Key("vercelProjectId", "string",
        "Vercel project of the frontend.",
        "<prj_...>", default=""),
    Key("vercelTeamId", "string",
        "Vercel team owning the project; empty: personal account.",
        "<team_...>", default=""),
    Key("vercelApiToken", "string",
        "Vercel API token." + _SET_ENCRYPTED,
        "<token>", default="", secret=True),
)
# fmt: on

KEYS_BY_NAME: Mapping[str, Key] = {key.name: key for key in KEYS}

_HOST_NAME = re.compile(r"(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
_SSH_KEY = re.compile(
    r"(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,3}( \S.*)?"
)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# sshUser goes into sshd_config (AllowUsers), cloud-init and ssh:// URLs; hostAddress
# into ssh:// URLs and known_hosts lines: one word each, nothing ssh could read as more.
_SSH_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_DNS_NAME = re.compile(
    r"(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
)


class ConfigError(pulumi.RunError):
    """Bad stack configuration, reported without a stack trace."""


class ConfigSource(Protocol):
    def get(self, key: str) -> str | None: ...

    def is_secret(self, key: str) -> bool: ...


class PulumiConfigSource:
    """The running stack's configuration (values arrive decrypted)."""

    def __init__(self) -> None:
        self._config = pulumi.Config(PROJECT)

    def get(self, key: str) -> str | None:
        return self._config.get(key)

    def is_secret(self, key: str) -> bool:
        return pulumi.runtime.is_config_secret(self._config.full_key(key))


def image_generation(image_ref: str) -> str:
    """A short name for an image: container names and aliases change with it."""
    match = digest_reference(image_ref) or DIGEST.fullmatch(image_ref)
    if match is not None:
        return match["digest"][:12]
    # A tag (dev only): its name, hashed, since the content behind it can move.
    return hashlib.sha256(image_ref.encode()).hexdigest()[:12]


def registry_host(image_ref: str) -> str | None:
    """The registry an image reference names, if it names one (`host[:port]/...`)."""
    first, slash, _ = image_ref.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def secret(value: SecretStr) -> pulumi.Output[str]:
    """A config secret as a Pulumi secret: encrypted in state, [secret] in previews."""
    wrapped: pulumi.Output[str] = pulumi.Output.secret(value.get_secret_value())
    return wrapped


def database_url_problem(url: str) -> str | None:
    """Why a migration connection string is unusable, without echoing it (it has a password)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a postgresql:// connection string"
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        return "is not a postgresql://user:password@host:port/database connection string"
    if not parts.username or not parts.password:
        return "must name the user and its password (postgresql://user:password@host...)"
    if port == TRANSACTION_POOLER_PORT:
        return (
            f"points at the transaction pooler (port {TRANSACTION_POOLER_PORT}); use the direct "
            "connection or the session-mode pooler (port 5432)"
        )
    if unquote(parts.username).split(".", 1)[0] == APP_ROLE:
        return f"must be a role that can migrate, not the service's own role {APP_ROLE}"
    return None


def _parse_origins(value: tuple[str, ...]) -> str:
    return ",".join(origin.rstrip("/") for origin in value)


class StackConfig(BaseModel):
    """Every key, typed. Secrets are SecretStr: printing the object shows no value."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )

    stack: str
    environment: StackEnvironment
    image_ref: str
    proxy_image: str
    redis_image: str
    promote_from: str
    registry_username: str
    registry_password: SecretStr | None
    replicas: int
    workers: int
    service_memory_mb: int
    state_dir: str
    subnet_octet: int
    http_port: int
    https_port: int
    bind_address: str
    log_level: str
    rate_limit: str
    cache_ttl_minutes: int
    jsearch_daily_budget: str
    theirstack_daily_budget: str
    frontend_origins: tuple[str, ...]
    rapid_api_key: SecretStr | None
    theirstack_api_key: SecretStr | None
    sentry_dsn: SecretStr | None
    frontend_api_keys: SecretStr | None
    database_url: SecretStr
    app_db_password: SecretStr
    host_mode: HostMode
    host_address: str
    host_key: str
    nodes: int
    servers: tuple[str, ...]
    ssh_user: str
    ssh_port: int
    ssh_public_key: str
    smoke_ssh_public_key: str
    hcloud_server_type: str
    hcloud_location: str
    hcloud_image: str
    hcloud_token: SecretStr | None
    docker_host: str
    domain: str
    acme_email: str
    cloudflare_zone_id: str
    cloudflare_api_token: SecretStr | None
    checkly_account_id: str
    checkly_api_key: SecretStr | None
    checkly_locations: tuple[str, ...]
    alert_emails: tuple[str, ...]
    alert_webhook_url: SecretStr | None
    runbook_base_url: str
    sentry_organization: str
    sentry_project: str
    sentry_team_id: str
    sentry_auth_token: SecretStr | None
    frontend_link: bool
    vercel_project_id: str
    vercel_team_id: str
    vercel_api_token: SecretStr | None

    @field_validator(
        "registry_password",
        "rapid_api_key",
        "theirstack_api_key",
        "sentry_dsn",
        "frontend_api_keys",
        "hcloud_token",
        "cloudflare_api_token",
        "checkly_api_key",
        "alert_webhook_url",
        "sentry_auth_token",
        "vercel_api_token",
        mode="before",
    )
    @classmethod
    def _empty_secret_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

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

    @field_validator("state_dir")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/") or "'" in value or " " in value:
            raise ValueError(f"must be an absolute path without spaces or quotes (got {value!r})")
        return value.rstrip("/") or "/"

    @field_validator("domain")
    @classmethod
    def _host_name(cls, value: str) -> str:
        value = value.strip().lower().rstrip(".")
        if value and not _HOST_NAME.fullmatch(value):
            raise ValueError(f"must be a host name like api.example.com (got {value!r})")
        return value

    @field_validator("acme_email")
    @classmethod
    def _acme_email(cls, value: str) -> str:
        if value and not _EMAIL.fullmatch(value):
            raise ValueError(f"must be an email address (got {value!r})")
        return value

    @field_validator("alert_emails")
    @classmethod
    def _alert_emails(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for address in value:
            if not _EMAIL.fullmatch(address):
                raise ValueError(f"{address!r} is not an email address")
        return value

    @field_validator("host_key", "ssh_public_key", "smoke_ssh_public_key")
    @classmethod
    def _ssh_key(cls, value: str) -> str:
        value = value.strip()
        if value and not _SSH_KEY.fullmatch(value):
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

    def secrets_fingerprint(self) -> str:
        """A keyed hash of every secret the service receives.

        It changes when any of them does, and without appDbPassword (the key, at
        least 24 characters) it tells nothing about them.
        """
        values = [
            self.database_url,
            self.app_db_password,
            self.rapid_api_key,
            self.theirstack_api_key,
            self.sentry_dsn,
            self.frontend_api_keys,
        ]
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
        """The service's non-secret settings this stack sets (topology adds the rest)."""
        budgets = {
            "JSEARCH_DAILY_BUDGET": self.jsearch_daily_budget.strip(),
            "THEIRSTACK_DAILY_BUDGET": self.theirstack_daily_budget.strip(),
        }
        return {
            "LOG_LEVEL": self.log_level,
            "RATE_LIMIT": self.rate_limit,
            "CACHE_TTL_MINUTES": str(self.cache_ttl_minutes),
            "CORS_ORIGINS": _parse_origins(self.frontend_origins),
            # A budget left empty is not set: unlimited.
            **{name: value for name, value in budgets.items() if value},
        }

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


@dataclass(frozen=True)
class Problem:
    key: Key
    reason: str

    def line(self, stack: str) -> str:
        return f"  - {self.key.full_name} {self.reason}.\n    Fix: {self.key.fix(stack)}"


def format_problems(stack: str, problems: list[Problem]) -> str:
    lines = "\n".join(problem.line(stack) for problem in problems)
    return f'stack "{stack}" is not configured correctly:\n{lines}'


def _parse_raw(key: Key, raw: str) -> str | int | bool | tuple[str, ...]:
    if key.kind == "integer":
        try:
            return int(raw.strip())
        except ValueError:
            raise ValueError(f"must be a whole number (got {raw!r})") from None
    if key.kind == "boolean":
        lowered = raw.strip().lower()
        if lowered not in ("true", "false"):
            raise ValueError(f"must be true or false (got {raw!r})")
        return lowered == "true"
    if key.kind == "array":
        try:
            items = json.loads(raw)
        except ValueError:
            items = None
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise ValueError("must be a list of strings (set each item with --path)")
        return tuple(item.strip() for item in items if item.strip())
    return raw


def _read(source: ConfigSource, key: Key) -> tuple[object, Problem | None]:
    raw = source.get(key.name)
    if raw is None:
        if key.default is None:
            return None, Problem(key, "is not set")
        return key.default, None
    if key.secret and raw.strip() and not source.is_secret(key.name):
        return None, Problem(key, "is stored in plain text; store it encrypted")
    try:
        return _parse_raw(key, raw), None
    except ValueError as error:
        return None, Problem(key, str(error))


def _validation_problems(error: ValidationError) -> list[Problem]:
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        alias = str(item["loc"][0]) if item["loc"] else ""
        key = KEYS_BY_NAME.get(alias) or KEYS_BY_NAME.get(to_camel(alias))
        if key is None:
            raise error
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "literal_error":
            message = message.replace("Input should be", "must be")
        problems.append(Problem(key, message))
    return problems


Rule = Callable[[StackConfig], list[Problem]]


def _problem(name: str, reason: str) -> Problem:
    return Problem(KEYS_BY_NAME[name], reason)


def _image_rules(config: StackConfig) -> list[Problem]:
    problems = []
    by_digest_only = config.environment != "dev"
    if config.environment == "prod" and not config.promotes:
        problems.append(_problem("promoteFrom", "is not set: prod runs only what staging ran"))
    values = {
        "imageRef": config.image_ref,
        "proxyImage": config.proxy_image,
        "redisImage": config.redis_image,
    }
    for name, value in values.items():
        if not value:
            # A promoting stack takes all three from its source stack.
            if not config.promotes:
                problems.append(_problem(name, "is not set"))
            continue
        if by_digest_only and digest_reference(value) is None:
            problems.append(
                _problem(name, f"must be pinned by digest, name@sha256:<64 hex> (got {value!r})")
            )
    if bool(config.registry_username) != (config.registry_password is not None):
        missing = "registryUsername" if config.registry_password is not None else "registryPassword"
        problems.append(
            _problem(missing, "is not set: registryUsername and registryPassword go together")
        )
    elif config.registry_username and config.image_ref and registry_host(config.image_ref) is None:
        problems.append(
            _problem("registryUsername", "is set, but imageRef names no registry host to log in to")
        )
    return problems


def _is_host_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return _DNS_NAME.fullmatch(value) is not None and not value.startswith("-")
    return True


def _host_rules(config: StackConfig) -> list[Problem]:
    problems = []
    if not _SSH_USER.fullmatch(config.ssh_user):
        problems.append(
            _problem(
                "sshUser",
                "must be a Unix user name: a lowercase letter or _, then up to 31 lowercase "
                f"letters, digits, _ or - (got {config.ssh_user!r})",
            )
        )
    if config.host_address and not _is_host_address(config.host_address):
        problems.append(
            _problem(
                "hostAddress",
                "must be an IP address or a DNS name, without user, port or brackets "
                f"(got {config.host_address!r})",
            )
        )
    if config.host_mode == "local" and config.environment != "dev":
        problems.append(
            _problem("hostMode", f"local is for dev stacks only, not {config.environment}")
        )
    if config.host_mode == "existing":
        if config.servers:
            problems.extend(_servers_problems(config))
        else:
            if not config.host_address:
                problems.append(_problem("hostAddress", "is not set (hostMode is existing)"))
            if not config.host_key:
                problems.append(
                    _problem("hostKey", "is not set: deploys check the server's identity")
                )
            if config.nodes > 1:
                problems.append(
                    _problem(
                        "servers",
                        f"is empty, but nodes is {config.nodes}: list every server "
                        "(hostAddress and hostKey name one)",
                    )
                )
    return problems


def _node_rules(config: StackConfig) -> list[Problem]:
    problems = []
    if config.host_mode != "existing" and config.servers:
        problems.append(_problem("servers", f"is for hostMode existing, not {config.host_mode}"))
    if config.host_mode == "local" and config.nodes > 1:
        problems.append(_problem("nodes", f"must be 1 with hostMode local (got {config.nodes})"))
    if (
        config.host_mode == "hcloud"
        and config.nodes > 1
        and config.subnet_octet == PRIVATE_NETWORK_OCTET
    ):
        problems.append(
            _problem(
                "subnetOctet",
                f"must not be {PRIVATE_NETWORK_OCTET}: 10.{PRIVATE_NETWORK_OCTET}.0.0/16 is the "
                "nodes' private network",
            )
        )
    if config.host_mode == "hcloud":
        if config.hcloud_token is None:
            problems.append(_problem("hcloudToken", "is not set (hostMode is hcloud)"))
        if not config.ssh_public_key:
            problems.append(_problem("sshPublicKey", "is not set (hostMode is hcloud)"))
    return problems


# The second octet of the hcloud private network, 10.254.0.0/16 (host.py's PRIVATE_NETWORK).
PRIVATE_NETWORK_OCTET = 254


def _servers_problems(config: StackConfig) -> list[Problem]:
    problems = []
    parsed = []
    for entry in config.servers:
        try:
            parsed.append(parse_server(entry))
        except ValueError as error:
            problems.append(_problem("servers", str(error)))
            continue
        address = entry.split()[0]
        if not _is_host_address(address):
            problems.append(_problem("servers", f"{address!r} is not an IP address or a DNS name"))
        if not _SSH_KEY.fullmatch(parsed[-1].host_key):
            problems.append(_problem("servers", f"{address}: the host key is not one OpenSSH key"))
    if problems:
        return problems
    if config.host_address or config.host_key:
        problems.append(
            _problem("hostAddress", "and hostKey must be empty when servers lists the servers")
        )
    if len(config.servers) != config.nodes:
        problems.append(
            _problem(
                "nodes",
                f"is {config.nodes}, but servers lists {len(config.servers)}: they must agree",
            )
        )
    roles = [server.role for server in config.existing_servers()]
    if roles[0] != "manager":
        problems.append(_problem("servers", "must list a manager first: it inits the swarm"))
    if roles.count("manager") % 2 == 0:
        problems.append(
            _problem(
                "servers",
                f"lists {roles.count('manager')} managers: an odd number keeps a Raft quorum",
            )
        )
    addresses = [server.address for server in config.existing_servers()]
    if len(set(addresses)) != len(addresses):
        problems.append(_problem("servers", "lists a server twice"))
    return problems


def _production_rules(config: StackConfig) -> list[Problem]:
    """What the production checklist asks of staging and prod (dev may skip it)."""
    if config.environment == "dev":
        return []
    problems = []
    if config.environment == "prod" and config.replicas < 2:
        problems.append(_problem("replicas", f"must be at least 2 in prod (got {config.replicas})"))
    if config.environment == "prod" and config.nodes < 2:
        problems.append(
            _problem(
                "nodes",
                f"must be at least 2 in prod: one machine is lost whole (got {config.nodes})",
            )
        )
    if not config.domain:
        problems.append(_problem("domain", "is not set: staging and prod serve HTTPS only"))
    if config.domain and not config.cloudflare_zone_id:
        problems.append(_problem("cloudflareZoneId", "is not set: the domain needs its DNS record"))
    if config.cloudflare_zone_id and config.cloudflare_api_token is None:
        problems.append(_problem("cloudflareApiToken", "is not set (cloudflareZoneId is)"))
    if config.rapid_api_key is None and config.theirstack_api_key is None:
        problems.append(
            _problem("rapidApiKey", "and theirstackApiKey are both empty: no search could succeed")
        )
    if not config.monitored:
        problems.append(_problem("checklyAccountId", "is not set: staging and prod are monitored"))
    return problems


def _monitoring_rules(config: StackConfig) -> list[Problem]:
    if not config.monitored:
        return []
    problems = []
    if config.checkly_api_key is None:
        problems.append(_problem("checklyApiKey", "is not set (checklyAccountId is)"))
    if not config.domain:
        problems.append(_problem("domain", "is not set: the checks probe https://<domain>"))
    if len(set(config.checkly_locations)) < 2:
        problems.append(
            _problem("checklyLocations", "must list two or more locations to probe from")
        )
    if not config.alert_emails and config.alert_webhook_url is None:
        problems.append(
            _problem(
                "alertEmails", "is empty and alertWebhookUrl is unset: alerts would reach no one"
            )
        )
    sentry = {
        "sentryOrganization": bool(config.sentry_organization),
        "sentryProject": bool(config.sentry_project),
        "sentryTeamId": bool(config.sentry_team_id),
        "sentryAuthToken": config.sentry_auth_token is not None,
    }
    if any(sentry.values()):
        problems.extend(
            _problem(name, "is not set (the other Sentry alert keys are)")
            for name, present in sentry.items()
            if not present
        )
    return problems


def _frontend_rules(config: StackConfig) -> list[Problem]:
    if not config.frontend_link:
        return []
    problems = []
    if not config.vercel_project_id:
        problems.append(_problem("vercelProjectId", "is not set (frontendLink is true)"))
    if config.vercel_api_token is None:
        problems.append(_problem("vercelApiToken", "is not set (frontendLink is true)"))
    if not config.frontend_origins:
        problems.append(
            _problem("frontendOrigins", "is empty: the frontend's origin must be allowed (CORS)")
        )
    if not config.domain:
        problems.append(_problem("domain", "is not set: the frontend needs an https BACKEND_URL"))
    return problems


# Each service setting the stack's check passes, by the stack config key that sets it.
_SETTING_KEYS = {
    "app_env": "environment",
    "log_level": "logLevel",
    "rate_limit": "rateLimit",
    "cache_ttl_minutes": "cacheTtlMinutes",
    "cors_origins": "frontendOrigins",
    "frontend_api_keys": "frontendApiKeys",
    "jsearch_daily_budget": "jsearchDailyBudget",
    "theirstack_daily_budget": "theirstackDailyBudget",
}


def _service_setting_rules(config: StackConfig) -> list[Problem]:
    """The service validates its settings at startup; checking them here fails the deploy
    before any container changes instead of after."""
    values: dict[str, object] = {"app_env": config.app_env}
    values.update({name.lower(): value for name, value in config.service_settings().items()})
    if config.frontend_api_keys is not None:
        # A secret: its messages never echo it.
        values["frontend_api_keys"] = config.frontend_api_keys.get_secret_value()
    try:
        # These values alone: not the deploying machine's environment or .env.
        settings_from(values)
    except ValidationError as error:
        problems = []
        for item in error.errors(include_input=False, include_url=False):
            field = str(item["loc"][0]) if item["loc"] else ""
            message = str(item["msg"]).removeprefix("Value error, ")
            problems.append(_problem(_SETTING_KEYS[field], message))
        return problems
    return []


RULES: tuple[Rule, ...] = (
    _image_rules,
    _host_rules,
    _node_rules,
    _production_rules,
    _monitoring_rules,
    _frontend_rules,
    _service_setting_rules,
)


def _environment(stack: str, source: ConfigSource) -> tuple[str, list[Problem]]:
    declared = (source.get("environment") or "").strip()
    environment = declared or stack
    if environment not in STACK_ENVIRONMENTS:
        reason = (
            f"is not set and the stack name {stack!r} is not one of {', '.join(STACK_ENVIRONMENTS)}"
            if not declared
            else f"must be one of {', '.join(STACK_ENVIRONMENTS)} (got {declared!r})"
        )
        return environment, [_problem("environment", reason)]
    return environment, []


def load(stack: str, source: ConfigSource) -> StackConfig:
    """Read and check every key; raise ConfigError listing every problem at once."""
    environment, problems = _environment(stack, source)
    values: dict[str, object] = {"stack": stack, "environment": environment}
    for key in KEYS:
        if key.name == "environment":
            continue
        value, problem = _read(source, key)
        if problem is not None:
            problems.append(problem)
        else:
            values[key.name] = value
    if problems:
        raise ConfigError(format_problems(stack, problems))
    try:
        config = StackConfig.model_validate(values)
    except ValidationError as error:
        raise ConfigError(format_problems(stack, _validation_problems(error))) from None
    for rule in RULES:
        problems.extend(rule(config))
    if problems:
        raise ConfigError(format_problems(stack, _dedupe(problems)))
    return config


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[str, str]] = set()
    unique = []
    for problem in problems:
        marker = (problem.key.name, problem.reason)
        if marker not in seen:
            seen.add(marker)
            unique.append(problem)
    return unique


@dataclass(frozen=True)
class ImageRefs:
    """The three images a stack runs, and where the list came from."""

    service: str
    proxy: str
    redis: str
    source: str
    # The source stack, when promoting: infra/separation.py reads it too.
    reference: pulumi.StackReference | None = None

    def images(self) -> Images:
        return Images(service=self.service, proxy=self.proxy, redis=self.redis)


# What a promoting stack reads from its source stack (infra/__main__.py exports them).
PROMOTED_OUTPUTS = {"service": "image_ref", "proxy": "proxy_image_ref", "redis": "redis_image_ref"}


async def resolve_images(config: StackConfig) -> ImageRefs:
    """This stack's images: from its config, or what its source stack runs now."""
    if not config.promotes:
        return ImageRefs(config.image_ref, config.proxy_image, config.redis_image, "config")
    name = config.promote_from
    if "/" not in name:
        # A bare stack name: the same organization and project as this stack.
        name = f"{pulumi.get_organization()}/{pulumi.get_project()}/{name}"
    source = pulumi.StackReference("promoted-from", stack_name=name)
    exported: dict[str, str] = {}
    for role, output in PROMOTED_OUTPUTS.items():
        details = await source.get_output_details(output)
        value = details.value if details.value is not None else details.secret_value
        if not isinstance(value, str) or digest_reference(value) is None:
            raise ConfigError(
                f"stack {name} exports no digest-pinned {output} "
                f"(got {value!r}): deploy it first with `pulumi up -s {name}`, "
                f"or point {KEYS_BY_NAME['promoteFrom'].full_name} at the stack to promote from"
            )
        exported[role] = value
    service = exported["service"]
    if config.image_ref:
        pulumi.log.warn(
            f"{config.stack} runs {config.image_ref} from {KEYS_BY_NAME['imageRef'].full_name}, "
            f"not {service}, which {name} runs: an emergency override. "
            f"Remove it to promote again: pulumi config rm {KEYS_BY_NAME['imageRef'].full_name} "
            f"-s {config.stack}"
        )
        service = config.image_ref
    return ImageRefs(service, exported["proxy"], exported["redis"], name, source)
