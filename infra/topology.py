"""What runs on a container host, described once as plain data.

Both translators read this and nothing else:
- `infra/local/` turns it into containers on the local Docker engine;
- `infra/components/service.py` turns it into pulumi-docker resources.
tests/infra/test_topology_drift.py checks that neither adds, drops or
changes a property on its own.

No Pulumi and no Docker here: only dataclasses and pure functions, so that
the description can be tested, diffed and printed without either.

The shape:
- one user-defined bridge network with a fixed subnet, so the proxy has a
  known address and the service trusts X-Forwarded-* from it alone;
- N service replicas per generation. Each replica has its own network alias
  (`api-<generation>-<n>`); the proxy lists them as static upstreams with
  active health checks on /health. A rollout starts a new generation, waits
  until it is healthy, rewrites the Caddyfile and reloads Caddy gracefully,
  then stops the old generation, which finishes its in-flight requests;
- Caddy in front: plain HTTP on a local port, or automatic HTTPS with HSTS
  and an HTTP-to-HTTPS redirect when a domain is set;
- Redis, the rate-limit store shared by every worker of every replica;
- for local runs only, Postgres (the stacks use Supabase).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

PROJECT = "jobsearch"
SERVICE_PORT = 8000
# Caddy listens on unprivileged ports inside its container so that it can run
# as a non-root user with no capabilities; the host maps 80/443 onto them.
PROXY_HTTP_PORT = 8080
PROXY_HTTPS_PORT = 8443
PROXY_HEALTH_PORT = 2020
PROXY_UID = "10002:10002"
SERVICE_UID = "10001:10001"
REDIS_UID = "999:999"
POSTGRES_UID = "999:999"

# Settings that carry credentials. They never appear in `env`; translators
# inject them from Pulumi secrets (stacks) or the local secrets file.
SERVICE_SECRET_SETTINGS = ("RAPID_API_KEY", "THEIRSTACK_API_KEY", "DATABASE_URL", "SENTRY_DSN")

LOCAL_POSTGRES_PORT = 55432
LOCAL_DATABASE = "jobsearch"

# "test" is a second local instance for the suite, so that it never touches a
# developer's `make local` (names, subnet and ports all differ). "dev" is a
# developer's own Pulumi stack (docs/pulumi.md), on their own Docker engine.
Environment = Literal["local", "test", "dev", "staging", "prod"]


@dataclass(frozen=True)
class Images:
    """Image references. The defaults are the official images users get;
    tests pass images built from Debian packages instead (no registry here)."""

    service: str
    proxy: str = "caddy:2"
    redis: str = "redis:7"
    postgres: str = "postgres:15"


@dataclass(frozen=True)
class HealthCheck:
    command: tuple[str, ...]
    interval_seconds: int = 5
    timeout_seconds: int = 3
    retries: int = 3
    start_period_seconds: int = 10

    @property
    def worst_case_seconds(self) -> int:
        """The longest Docker can take to call a container healthy or unhealthy: the
        start period, then `retries` failed checks (and one more under way)."""
        per_check = self.interval_seconds + self.timeout_seconds
        return self.start_period_seconds + (self.retries + 1) * per_check


@dataclass(frozen=True)
class PortMapping:
    container_port: int
    host_port: int
    host_ip: str = "0.0.0.0"  # noqa: S104 - the proxy is the public entry point
    protocol: Literal["tcp", "udp"] = "tcp"


@dataclass(frozen=True)
class Mount:
    """A bind mount from the host's state directory, or a named volume."""

    target: str
    source: str
    kind: Literal["bind", "volume"]
    read_only: bool = False


@dataclass(frozen=True)
class LogRotation:
    driver: str = "json-file"
    max_size: str = "10m"
    max_file: int = 5

    def options(self) -> dict[str, str]:
        return {"max-size": self.max_size, "max-file": str(self.max_file)}


@dataclass(frozen=True)
class Limits:
    memory_mb: int
    cpus: float
    pids: int = 256


@dataclass(frozen=True)
class ContainerSpec:
    role: Literal["api", "proxy", "redis", "postgres"]
    name: str
    image: str
    command: tuple[str, ...] | None
    env: Mapping[str, str]
    secret_env: tuple[str, ...]
    aliases: tuple[str, ...]
    user: str
    healthcheck: HealthCheck
    limits: Limits
    stop_timeout_seconds: int
    ipv4_address: str | None = None
    ports: tuple[PortMapping, ...] = ()
    mounts: tuple[Mount, ...] = ()
    tmpfs: Mapping[str, str] = field(default_factory=dict)
    read_only: bool = True
    cap_drop: tuple[str, ...] = ("ALL",)
    cap_add: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ("no-new-privileges:true",)
    restart: Literal["unless-stopped", "always", "on-failure", "no"] = "unless-stopped"
    logging: LogRotation = LogRotation()
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    subnet: str
    gateway: str
    proxy_address: str
    # Where the engine picks addresses for every other container: outside it,
    # so that no replica started first can take the proxy's fixed address.
    dynamic_range: str | None = None
    internal: bool = False


def https_origin(domain: str, https_port: int) -> str:
    """The API's origin on its domain: the port is left out when it is HTTPS's own."""
    return f"https://{domain}" if https_port == 443 else f"https://{domain}:{https_port}"


@dataclass(frozen=True)
class TopologySpec:
    """The inputs: what differs between local, staging and prod."""

    environment: Environment
    images: Images
    replicas: int = 2
    workers: int = 2
    domain: str | None = None
    acme_email: str | None = None
    http_port: int = 80
    https_port: int = 443
    bind_address: str = "0.0.0.0"  # noqa: S104
    # Non-secret service settings (LOG_LEVEL, CORS_ORIGINS, RATE_LIMIT, ...).
    settings: Mapping[str, str] = field(default_factory=dict)
    # Where the host keeps the Caddyfile and Caddy's certificates.
    state_dir: str = "/srv/jobsearch"
    subnet_octet: int = 231
    local_datastores: bool = False
    postgres_host_port: int = LOCAL_POSTGRES_PORT
    service_memory_mb: int = 512
    service_cpus: float = 1.0


@dataclass(frozen=True)
class Topology:
    spec: TopologySpec
    network: NetworkSpec
    proxy: ContainerSpec
    datastores: tuple[ContainerSpec, ...]
    volumes: tuple[str, ...]

    @property
    def prefix(self) -> str:
        return f"{PROJECT}-{self.spec.environment}"

    def replicas(self, generation: str) -> tuple[ContainerSpec, ...]:
        """The service replicas of one generation (one image rollout)."""
        return tuple(
            _replica(self, generation, index) for index in range(1, self.spec.replicas + 1)
        )

    def caddyfile(self, upstream_aliases: tuple[str, ...]) -> str:
        return render_caddyfile(self.spec, upstream_aliases)

    @property
    def public_url(self) -> str:
        if self.spec.domain:
            return https_origin(self.spec.domain, self.spec.https_port)
        host = (
            "127.0.0.1"
            if self.spec.bind_address in ("0.0.0.0", "127.0.0.1")  # noqa: S104
            else self.spec.bind_address
        )
        return f"http://{host}:{self.spec.http_port}"


PROJECT_LABEL = "org.jobsearch.project"
ENVIRONMENT_LABEL = "org.jobsearch.environment"
ROLE_LABEL = "org.jobsearch.role"
GENERATION_LABEL = "org.jobsearch.generation"


def base_labels(environment: str) -> dict[str, str]:
    """What marks every container, network and volume of one environment's topology."""
    return {PROJECT_LABEL: PROJECT, ENVIRONMENT_LABEL: environment}


def _labels(spec: TopologySpec, role: str, **extra: str) -> dict[str, str]:
    return {**base_labels(spec.environment), ROLE_LABEL: role, **extra}


def service_healthcheck() -> HealthCheck:
    # The image carries the same check (service/Dockerfile HEALTHCHECK); stating
    # it here lets translators and the policy pack see it without the image.
    return HealthCheck(
        command=("python", "-m", "jobsearch.healthcheck"),
        interval_seconds=2,
        # A Python process starts within the timeout even on a busy 2-core host.
        timeout_seconds=5,
        retries=3,
        start_period_seconds=20,
    )


def _replica(topology: Topology, generation: str, index: int) -> ContainerSpec:
    spec = topology.spec
    env = {
        "APP_ENV": app_env(spec.environment),
        "HOST": "0.0.0.0",  # noqa: S104 - reachable on the private network only
        "PORT": str(SERVICE_PORT),
        "WORKERS": str(spec.workers),
        "FORWARDED_ALLOW_IPS": topology.network.proxy_address,
        "REDIS_URL": "redis://redis:6379/0",
        **spec.settings,
    }
    return ContainerSpec(
        role="api",
        name=f"{topology.prefix}-api-{generation}-{index}",
        image=spec.images.service,
        command=None,
        env=env,
        secret_env=SERVICE_SECRET_SETTINGS,
        aliases=(f"api-{generation}-{index}",),
        user=SERVICE_UID,
        healthcheck=service_healthcheck(),
        limits=Limits(memory_mb=spec.service_memory_mb, cpus=spec.service_cpus),
        # Longer than the service's own graceful shutdown (jobsearch.cli), so
        # in-flight requests finish before Docker would kill the process.
        stop_timeout_seconds=30,
        tmpfs={"/tmp": "rw,noexec,nosuid,size=64m"},  # noqa: S108
        labels=_labels(spec, "api", **{GENERATION_LABEL: generation}),
    )


def _tmpfs_owner(user: str) -> str:
    uid, gid = user.split(":")
    return f"uid={uid},gid={gid}"


def app_env(environment: Environment) -> str:
    """The service's APP_ENV in this environment (Sentry's environment too)."""
    return {
        "local": "development",
        "test": "development",
        "dev": "development",
        "staging": "staging",
        "prod": "production",
    }[environment]


def _proxy(spec: TopologySpec, network: NetworkSpec, prefix: str) -> ContainerSpec:
    ports = [PortMapping(PROXY_HTTP_PORT, spec.http_port, spec.bind_address)]
    if spec.domain:
        ports.append(PortMapping(PROXY_HTTPS_PORT, spec.https_port, spec.bind_address))
    return ContainerSpec(
        role="proxy",
        name=f"{prefix}-proxy",
        image=spec.images.proxy,
        command=("caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"),
        env={"XDG_CONFIG_HOME": "/config", "XDG_DATA_HOME": "/data"},
        secret_env=(),
        aliases=("proxy",),
        user=PROXY_UID,
        healthcheck=HealthCheck(
            command=(
                "wget",
                "-q",
                "-O",
                "/dev/null",
                f"http://127.0.0.1:{PROXY_HEALTH_PORT}/healthz",
            ),
            interval_seconds=5,
            timeout_seconds=3,
            retries=3,
            start_period_seconds=5,
        ),
        limits=Limits(memory_mb=256, cpus=0.5),
        stop_timeout_seconds=15,
        ipv4_address=network.proxy_address,
        ports=tuple(ports),
        mounts=(
            Mount("/etc/caddy", f"{spec.state_dir}/caddy-config", "bind", read_only=True),
            Mount("/data", f"{spec.state_dir}/caddy-data", "bind"),
        ),
        # A tmpfs is root's unless told otherwise; Caddy autosaves its config here.
        tmpfs={
            "/config": f"rw,noexec,nosuid,size=16m,{_tmpfs_owner(PROXY_UID)}",
            "/tmp": "rw,noexec,nosuid,size=16m",  # noqa: S108
        },
        labels=_labels(spec, "proxy"),
    )


def _redis(spec: TopologySpec, prefix: str) -> ContainerSpec:
    return ContainerSpec(
        role="redis",
        name=f"{prefix}-redis",
        image=spec.images.redis,
        # Counters only: nothing to persist, and it must never fill the host.
        command=(
            "redis-server",
            "--save",
            "",
            "--appendonly",
            "no",
            "--maxmemory",
            "64mb",
            "--maxmemory-policy",
            "allkeys-lru",
            "--protected-mode",
            "no",
        ),
        env={},
        secret_env=(),
        aliases=("redis",),
        user=REDIS_UID,
        healthcheck=HealthCheck(command=("redis-cli", "ping"), interval_seconds=5),
        limits=Limits(memory_mb=128, cpus=0.25),
        stop_timeout_seconds=10,
        tmpfs={"/data": "rw,noexec,nosuid,size=80m", "/tmp": "rw,noexec,nosuid,size=8m"},  # noqa: S108
        labels=_labels(spec, "redis"),
    )


def _postgres(spec: TopologySpec, prefix: str) -> ContainerSpec:
    return ContainerSpec(
        role="postgres",
        name=f"{prefix}-postgres",
        image=spec.images.postgres,
        command=None,
        env={"POSTGRES_DB": LOCAL_DATABASE, "PGDATA": "/var/lib/postgresql/data/pgdata"},
        secret_env=("POSTGRES_PASSWORD",),
        aliases=("postgres",),
        user=POSTGRES_UID,
        healthcheck=HealthCheck(
            command=("pg_isready", "-U", "postgres", "-d", LOCAL_DATABASE), interval_seconds=2
        ),
        limits=Limits(memory_mb=512, cpus=1.0),
        stop_timeout_seconds=30,
        # Published on loopback only: the local runner applies migrations through it.
        ports=(PortMapping(5432, spec.postgres_host_port, "127.0.0.1"),),
        mounts=(Mount("/var/lib/postgresql/data", f"{prefix}-pgdata", "volume"),),
        # Postgres, running as its uid, puts its socket and lock file here.
        tmpfs={
            "/var/run/postgresql": f"rw,nosuid,size=8m,{_tmpfs_owner(POSTGRES_UID)}",
            "/tmp": "rw,noexec,nosuid,size=64m",  # noqa: S108
        },
        labels=_labels(spec, "postgres"),
    )


def describe(spec: TopologySpec) -> Topology:
    if spec.replicas < 1:
        raise ValueError("replicas must be at least 1")
    prefix = f"{PROJECT}-{spec.environment}"
    base = f"10.{spec.subnet_octet}.0"
    network = NetworkSpec(
        name=f"{prefix}-net",
        subnet=f"{base}.0/24",
        gateway=f"{base}.1",
        proxy_address=f"{base}.2",
        dynamic_range=f"{base}.128/25",
    )
    datastores = [_redis(spec, prefix)]
    volumes: list[str] = []
    if spec.local_datastores:
        datastores.append(_postgres(spec, prefix))
        volumes.append(f"{prefix}-pgdata")
    return Topology(
        spec=spec,
        network=network,
        proxy=_proxy(spec, network, prefix),
        datastores=tuple(datastores),
        volumes=tuple(volumes),
    )


def render_caddyfile(spec: TopologySpec, upstream_aliases: tuple[str, ...]) -> str:
    """The proxy's whole configuration, for a given set of live replicas."""
    upstreams = " ".join(f"{alias}:{SERVICE_PORT}" for alias in upstream_aliases)
    if spec.domain:
        email = f"\n\temail {spec.acme_email}" if spec.acme_email else ""
        global_options = f"\thttp_port {PROXY_HTTP_PORT}\n\thttps_port {PROXY_HTTPS_PORT}{email}"
        site = spec.domain
        hsts = '\t\tStrict-Transport-Security "max-age=31536000; includeSubDomains"\n'
    else:
        global_options = f"\thttp_port {PROXY_HTTP_PORT}\n\tauto_https off"
        site = f":{PROXY_HTTP_PORT}"
        hsts = ""
    return f"""# Generated by infra/topology.py. Do not edit on the host: a rollout rewrites it.
{{
{global_options}
\tadmin localhost:2019
\tservers {{
\t\tprotocols h1 h2
\t}}
}}

{site} {{
\theader {{
{hsts}\t\t-Server
\t}}
\t# Scraped from the private network only, never through the public entry point.
\t@internal path /metrics /metrics/*
\trespond @internal 404
\trequest_body {{
\t\tmax_size 64KB
\t}}
\treverse_proxy {upstreams} {{
\t\t# Not round_robin: with one replica down, two concurrent picks can both land on it,
\t\t# and Caddy then answers a POST 503 at once (tests/drills/test_container_killed.py).
\t\tlb_policy least_conn
\t\tlb_try_duration 10s
\t\tlb_try_interval 100ms
\t\thealth_uri /health
\t\thealth_interval 1s
\t\thealth_timeout 2s
\t\thealth_status 200
\t\tfail_duration 5s
\t\tmax_fails 3
\t\ttransport http {{
\t\t\tdial_timeout 2s
\t\t\tresponse_header_timeout 60s
\t\t}}
\t}}
}}

:{PROXY_HEALTH_PORT} {{
\trespond /healthz "ok" 200
}}
"""
