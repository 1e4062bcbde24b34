"""What runs on a swarm, described once as plain data.

One translation reads this: `infra/swarm.py` turns each ServiceSpec into the
Docker Engine's own service spec. The local run sends that spec to the engine
as it is (infra/local/), and the stacks hand the very same spec to pulumi-docker
(infra/components/service.py, through a schema adapter that a round-trip test
keeps lossless).

No Pulumi and no Docker here: only dataclasses and pure functions, so that
the description can be tested, diffed and printed without either.

The shape:
- one overlay network with a fixed subnet; the service trusts X-Forwarded-*
  from that subnet alone, and only the proxy publishes ports;
- the service, N replicas that the engine schedules and rolls out itself:
  start-first, one at a time, health-gated, rolled back on failure. Every
  service uses DNS round robin (`endpoint_mode: dnsrr`): the engine adds a
  task to `tasks.<service>` only once its health check passes, and removes it
  before it sends SIGTERM, so the proxy's resolver is its health gate;
- Caddy in front, with dynamic upstreams (`tasks.<service>`, re-resolved every
  second): no proxy reload at a rollout. Plain HTTP on a port, or automatic
  HTTPS with HSTS when a domain is set; certificates live in a volume;
- Redis, the rate-limit store shared by every worker of every replica;
- for local runs only, Postgres (the stacks use Supabase), and a stand-in for
  each job source without a key (infra/standins/), serving sample listings.
Credentials are Docker secrets, mounted as files for the service user alone;
nothing secret is ever in a service's environment.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, get_args

from infra import standins
from jobsearch.contract import SECRET_SETTINGS

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

# Settings that carry credentials (the service's SecretStr fields). They never
# appear in `env`: each is a Docker secret, mounted at SECRETS_DIR/<NAME>, which
# the service reads through pydantic-settings' secrets support.
SERVICE_SECRET_SETTINGS = SECRET_SETTINGS
SECRETS_DIR = "/run/secrets"

# What the proxy allows a client (tests/drills/test_slow_clients.py): slow or
# stalled senders are cut off; the write timeout covers a whole search (3x the
# upstream timeout, retries included) with room to spare.
PROXY_READ_HEADER_TIMEOUT = "5s"
PROXY_READ_BODY_TIMEOUT = "10s"
PROXY_WRITE_TIMEOUT = "120s"
PROXY_IDLE_TIMEOUT = "60s"
PROXY_MAX_HEADER_SIZE = "16KB"
# Go's soft memory limit for Caddy, under its container's hard limit, so that the
# collector works harder before the kernel would kill it.
PROXY_MEMORY_MB = 256
PROXY_GOMEMLIMIT = "200MiB"
# Open files per process in every container: connections included.
NOFILE_LIMIT = 8192

LOCAL_POSTGRES_PORT = 55432
LOCAL_DATABASE = "jobsearch"

# "test" is a second local instance for the suite, so that it never touches a
# developer's `make local` (names, subnet and ports all differ). "dev" is a
# developer's own Pulumi stack (docs/pulumi.md), on their own Docker engine.
Environment = Literal["local", "test", "dev", "staging", "prod"]
# Listed in start order: what others need first (datastores and stand-ins before
# the service, the service before the proxy); the local runner starts them so.
Role = Literal["redis", "postgres", "standin-jsearch", "standin-theirstack", "api", "proxy"]
START_ORDER: tuple[Role, ...] = get_args(Role)
# Created before the service, which the stacks make depend on them.
DATASTORE_ROLES: tuple[Role, ...] = ("redis", "postgres")


@dataclass(frozen=True)
class Images:
    """Image references. The defaults are the official images users get;
    tests pass images built from Debian packages instead (no registry here)."""

    service: str
    proxy: str = "caddy:2"
    redis: str = "redis:7"
    postgres: str = "postgres:15"
    # The job sources' stand-ins (local runs only): the service image plus infra/standins.
    standin: str = ""


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
class Port:
    """A port published on the node itself (`mode: host`): the swarm's routing
    mesh needs IPVS, and host mode keeps the client's address for the proxy."""

    target: int
    published: int
    protocol: Literal["tcp", "udp"] = "tcp"


@dataclass(frozen=True)
class Mount:
    """A named volume, or a tmpfs (`source` unused) of `size_mb`."""

    target: str
    kind: Literal["volume", "tmpfs"]
    source: str = ""
    read_only: bool = False
    size_mb: int = 0
    # A tmpfs is root's: a world-writable sticky directory lets a non-root user
    # write. (Over a directory the image has, the engine keeps that one's mode.)
    mode: int = 0o1777


@dataclass(frozen=True)
class FileMount:
    """A Docker secret or config, mounted read-only as a file for one user."""

    name: str  # the secret's or config's logical name (a setting, or "Caddyfile")
    target: str
    owner: str  # uid:gid
    mode: int = 0o400


@dataclass(frozen=True)
class RolloutPolicy:
    """How the engine replaces tasks (`update_config` and `rollback_config`)."""

    order: Literal["start-first", "stop-first"]
    monitor_seconds: int
    failure_action: Literal["rollback", "pause", "continue"] = "rollback"
    parallelism: int = 1
    delay_seconds: int = 0
    max_failure_ratio: float = 0.0


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
    nofile: int = NOFILE_LIMIT


@dataclass(frozen=True)
class ServiceSpec:
    role: Role
    name: str
    image: str
    command: tuple[str, ...] | None
    env: Mapping[str, str]
    user: str
    healthcheck: HealthCheck
    limits: Limits
    replicas: int
    update: RolloutPolicy
    rollback: RolloutPolicy
    # SIGTERM, then this long before SIGKILL.
    stop_grace_seconds: int
    aliases: tuple[str, ...]
    secrets: tuple[FileMount, ...] = ()
    configs: tuple[FileMount, ...] = ()
    ports: tuple[Port, ...] = ()
    mounts: tuple[Mount, ...] = ()
    read_only: bool = True
    cap_drop: tuple[str, ...] = ("ALL",)
    cap_add: tuple[str, ...] = ()
    # Spread replicas over nodes; the rest stays on a manager, where its volume is
    # and where DNS sends the clients.
    placement_preferences: tuple[str, ...] = ("node.id",)
    placement_constraints: tuple[str, ...] = ("node.role == manager",)
    # At most this many tasks of the service on one node (engine API 1.40+); 0: no cap.
    placement_max_replicas: int = 0
    logging: LogRotation = LogRotation()
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    subnet: str
    gateway: str
    # Only local instances let plain containers join (the suite's fake upstreams).
    attachable: bool = False


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
    # Non-secret service settings (LOG_LEVEL, CORS_ORIGINS, RATE_LIMIT, ...).
    settings: Mapping[str, str] = field(default_factory=dict)
    subnet_octet: int = 231
    local_datastores: bool = False
    postgres_host_port: int = LOCAL_POSTGRES_PORT
    service_memory_mb: int = 512
    service_cpus: float = 1.0
    # Swarm nodes the stack runs on (jobsearch:nodes); local runs have one.
    nodes: int = 1
    # Sources served by a local stand-in (jsearch, theirstack) instead of the real API.
    sample_sources: tuple[standins.Source, ...] = ()


# Node labels the stacks set on the first manager (infra/components/host.py). With
# more than one node, Redis and the proxy are pinned there: each keeps its volume
# (rate-limit counters; certificates and ACME account), and DNS points at that node.
DATASTORE_LABEL = "jobsearch.datastore"
EDGE_LABEL = "jobsearch.edge"
# First line of the command that inits or joins each node of a stack: the policy
# pack counts a stack's nodes by it (infra/policy/policies.py).
NODE_MARKER = "# org.jobsearch.node="


def manager_count(nodes: int) -> int:
    """Swarm managers among `nodes`: three once there are three nodes, so that Raft keeps
    a quorum (two of three) when one is lost; one below that (two managers would halve
    the odds: losing either loses the quorum)."""
    return 3 if nodes >= 3 else 1


def _pinned(spec: TopologySpec, label: str) -> tuple[str, ...]:
    if spec.nodes > 1:
        return ("node.role == manager", f"node.labels.{label} == true")
    return ("node.role == manager",)


@dataclass(frozen=True)
class Topology:
    spec: TopologySpec
    network: NetworkSpec
    services: tuple[ServiceSpec, ...]
    volumes: tuple[str, ...]
    # Config files by logical name, with their content (the Caddyfile).
    config_files: Mapping[str, str]

    @property
    def prefix(self) -> str:
        return f"{PROJECT}-{self.spec.environment}"

    def service(self, role: Role) -> ServiceSpec:
        for service in self.services:
            if service.role == role:
                return service
        raise KeyError(f"the {self.spec.environment} topology has no {role} service")

    @property
    def api(self) -> ServiceSpec:
        return self.service("api")

    @property
    def proxy(self) -> ServiceSpec:
        return self.service("proxy")

    @property
    def secret_names(self) -> tuple[str, ...]:
        """Every secret some service mounts, each once."""
        return tuple(dict.fromkeys(s.name for svc in self.services for s in svc.secrets))

    @property
    def public_url(self) -> str:
        if self.spec.domain:
            return https_origin(self.spec.domain, self.spec.https_port)
        return f"http://127.0.0.1:{self.spec.http_port}"


PROJECT_LABEL = "org.jobsearch.project"
ENVIRONMENT_LABEL = "org.jobsearch.environment"
ROLE_LABEL = "org.jobsearch.role"
# On a secret or config: its logical name (the versioned object name differs).
LOGICAL_NAME_LABEL = "org.jobsearch.name"


def base_labels(environment: str) -> dict[str, str]:
    """What marks every service, network, secret and volume of one environment."""
    return {PROJECT_LABEL: PROJECT, ENVIRONMENT_LABEL: environment}


def _labels(spec: TopologySpec, role: str) -> dict[str, str]:
    return {**base_labels(spec.environment), ROLE_LABEL: role}


def versioned_name(prefix: str, logical: str, content: bytes) -> str:
    """Secrets and configs are immutable in a swarm: a new value is a new object,
    named by a hash of its content, and a rolling update moves services onto it."""
    digest = hashlib.sha256(content).hexdigest()[:10]
    return f"{prefix}-{logical.lower().replace('_', '-')}-{digest}"


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


# Replicas: one at a time, the new task healthy before the old one stops, and
# watched for the health check's whole worst case before the update counts as
# done; any failure rolls the service back to its previous spec. A rollback
# that fails itself pauses (the engine offers no other safe choice there).
def _replica_rollout(check: HealthCheck) -> tuple[RolloutPolicy, RolloutPolicy]:
    update = RolloutPolicy(order="start-first", monitor_seconds=check.worst_case_seconds)
    return update, replace(update, failure_action="pause")


# A service with a published host port or a volume cannot run twice on a node:
# stop the old task first (a short gap, which the README states).
def _singleton_rollout(check: HealthCheck) -> tuple[RolloutPolicy, RolloutPolicy]:
    update = RolloutPolicy(order="stop-first", monitor_seconds=check.worst_case_seconds)
    return update, replace(update, failure_action="pause")


# The service's own drain (jobsearch.server: 5 s of serving while the proxy
# forgets the task, then up to 20 s for in-flight requests) fits inside this.
SERVICE_STOP_GRACE_SECONDS = 30


def app_env(environment: Environment) -> str:
    """The service's APP_ENV in this environment (Sentry's environment too)."""
    return {
        "local": "development",
        "test": "development",
        "dev": "development",
        "staging": "staging",
        "prod": "production",
    }[environment]


def _api(spec: TopologySpec, network: NetworkSpec, prefix: str) -> ServiceSpec:
    env = {
        "APP_ENV": app_env(spec.environment),
        "HOST": "0.0.0.0",  # noqa: S104 - reachable on the private network only
        "PORT": str(SERVICE_PORT),
        "WORKERS": str(spec.workers),
        # With WORKERS, what each process's share of RATE_LIMIT divides by while the
        # limit is counted per process (Redis down).
        "REPLICAS": str(spec.replicas),
        # Task addresses change at every rollout: trust the overlay, which only
        # this topology's services join.
        "FORWARDED_ALLOW_IPS": network.subnet,
        "REDIS_URL": "redis://redis:6379/0",
        **spec.settings,
    }
    if spec.sample_sources:
        env["SAMPLE_SOURCES"] = ",".join(spec.sample_sources)
        for source in spec.sample_sources:
            env[standins.BASE_URL_SETTINGS[source]] = standin_url(source)
    check = service_healthcheck()
    update, rollback = _replica_rollout(check)
    return ServiceSpec(
        role="api",
        name=f"{prefix}-api",
        image=spec.images.service,
        command=None,
        env=env,
        user=SERVICE_UID,
        healthcheck=check,
        limits=Limits(memory_mb=spec.service_memory_mb, cpus=spec.service_cpus),
        replicas=spec.replicas,
        update=update,
        rollback=rollback,
        stop_grace_seconds=SERVICE_STOP_GRACE_SECONDS,
        aliases=("api",),
        placement_constraints=(),
        # At most one replica per node while there are spare nodes: a start-first rollout
        # starts the new task on a node without one, and a lost node's replica finds a
        # free node. Not when replicas == nodes (or more): a hard cap of one per node
        # would leave no node for the rollout's new task, and a lost node's replica
        # unscheduled until the node returns; `spread node.id` alone balances them then.
        placement_max_replicas=1 if spec.replicas < spec.nodes else 0,
        secrets=tuple(
            FileMount(name, f"{SECRETS_DIR}/{name}", SERVICE_UID)
            for name in SERVICE_SECRET_SETTINGS
        ),
        mounts=(Mount("/tmp", "tmpfs", size_mb=64),),  # noqa: S108
        labels=_labels(spec, "api"),
    )


def _proxy(spec: TopologySpec, prefix: str) -> ServiceSpec:
    ports = [Port(PROXY_HTTP_PORT, spec.http_port)]
    if spec.domain:
        ports.append(Port(PROXY_HTTPS_PORT, spec.https_port))
    check = HealthCheck(
        command=("wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{PROXY_HEALTH_PORT}/healthz"),
        interval_seconds=5,
        timeout_seconds=3,
        retries=3,
        start_period_seconds=5,
    )
    update, rollback = _singleton_rollout(check)
    return ServiceSpec(
        role="proxy",
        name=f"{prefix}-proxy",
        image=spec.images.proxy,
        command=("caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"),
        # Caddy autosaves its running config under XDG_CONFIG_HOME: the tmpfs.
        env={
            "XDG_CONFIG_HOME": "/tmp",  # noqa: S108
            "XDG_DATA_HOME": "/data",
            "GOMEMLIMIT": PROXY_GOMEMLIMIT,
        },
        user=PROXY_UID,
        healthcheck=check,
        limits=Limits(memory_mb=PROXY_MEMORY_MB, cpus=0.5),
        replicas=1,
        update=update,
        rollback=rollback,
        stop_grace_seconds=15,
        aliases=("proxy",),
        configs=(FileMount("Caddyfile", "/etc/caddy/Caddyfile", PROXY_UID, mode=0o444),),
        ports=tuple(ports),
        # On the first manager, with its certificates: DNS points there.
        placement_constraints=_pinned(spec, EDGE_LABEL),
        mounts=(
            # Certificates and ACME accounts: they must outlive the proxy's task.
            Mount("/data", "volume", source=f"{prefix}-caddy-data"),
            Mount("/tmp", "tmpfs", size_mb=16),  # noqa: S108
        ),
        labels=_labels(spec, "proxy"),
    )


def _redis(spec: TopologySpec, prefix: str) -> ServiceSpec:
    check = HealthCheck(command=("redis-cli", "ping"), interval_seconds=5)
    update, rollback = _singleton_rollout(check)
    return ServiceSpec(
        role="redis",
        name=f"{prefix}-redis",
        image=spec.images.redis,
        # Counters only, kept across a restart (an append-only file, fsync'd each
        # second), and never more than 64 MB of them.
        command=(
            "redis-server",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--maxmemory",
            "64mb",
            "--maxmemory-policy",
            "allkeys-lru",
            "--protected-mode",
            "no",
        ),
        env={},
        user=REDIS_UID,
        healthcheck=check,
        limits=Limits(memory_mb=128, cpus=0.25),
        replicas=1,
        update=update,
        rollback=rollback,
        stop_grace_seconds=10,
        aliases=("redis",),
        # On one node, with its volume (a volume is local to its node).
        placement_constraints=_pinned(spec, DATASTORE_LABEL),
        mounts=(
            Mount("/data", "volume", source=f"{prefix}-redis-data"),
            Mount("/tmp", "tmpfs", size_mb=8),  # noqa: S108
        ),
        labels=_labels(spec, "redis"),
    )


def _postgres(spec: TopologySpec, prefix: str) -> ServiceSpec:
    check = HealthCheck(
        command=("pg_isready", "-U", "postgres", "-d", LOCAL_DATABASE), interval_seconds=2
    )
    update, rollback = _singleton_rollout(check)
    return ServiceSpec(
        role="postgres",
        name=f"{prefix}-postgres",
        image=spec.images.postgres,
        command=None,
        env={
            "POSTGRES_DB": LOCAL_DATABASE,
            "PGDATA": "/var/lib/postgresql/data/pgdata",
            "POSTGRES_PASSWORD_FILE": f"{SECRETS_DIR}/POSTGRES_PASSWORD",
        },
        user=POSTGRES_UID,
        healthcheck=check,
        limits=Limits(memory_mb=512, cpus=1.0),
        replicas=1,
        update=update,
        rollback=rollback,
        stop_grace_seconds=30,
        aliases=("postgres",),
        secrets=(FileMount("POSTGRES_PASSWORD", f"{SECRETS_DIR}/POSTGRES_PASSWORD", POSTGRES_UID),),
        # Published so that the local runner applies migrations from the host.
        ports=(Port(5432, spec.postgres_host_port),),
        mounts=(
            Mount("/var/lib/postgresql/data", "volume", source=f"{prefix}-pgdata"),
            Mount("/tmp", "tmpfs", size_mb=64),  # noqa: S108
        ),
        # Local only. Postgres writes its socket and lock file into the image's
        # /var/run/postgresql, which a swarm tmpfs would mount as root's.
        read_only=False,
        labels=_labels(spec, "postgres"),
    )


def standin_role(source: standins.Source) -> Role:
    return "standin-jsearch" if source == "jsearch" else "standin-theirstack"


def standin_url(source: standins.Source) -> str:
    """Where the service finds a source's stand-in: its alias on the overlay."""
    return f"http://{standin_role(source)}:{standins.PORT}"


def _standin(spec: TopologySpec, prefix: str, source: standins.Source) -> ServiceSpec:
    role = standin_role(source)
    control = f"http://127.0.0.1:{standins.PORT}{standins.CONTROL_PATH}"
    check = HealthCheck(
        command=("python", "-c", f"import urllib.request; urllib.request.urlopen({control!r})"),
        interval_seconds=2,
        start_period_seconds=10,
    )
    update, rollback = _singleton_rollout(check)
    return ServiceSpec(
        role=role,
        name=f"{prefix}-{role}",
        image=spec.images.standin,
        command=(
            "python",
            "-m",
            "infra.standins",
            "--host",
            "0.0.0.0",  # noqa: S104 - reachable on the private network only
            "--port",
            str(standins.PORT),
        ),
        env={},
        user=SERVICE_UID,
        healthcheck=check,
        limits=Limits(memory_mb=128, cpus=0.25, pids=64),
        replicas=1,
        update=update,
        rollback=rollback,
        stop_grace_seconds=5,
        aliases=(role,),
        mounts=(Mount("/tmp", "tmpfs", size_mb=8),),  # noqa: S108
        labels=_labels(spec, role),
    )


def describe(spec: TopologySpec) -> Topology:
    if spec.replicas < 1:
        raise ValueError("replicas must be at least 1")
    if spec.nodes < 1:
        raise ValueError("nodes must be at least 1")
    unknown = sorted(set(spec.sample_sources) - set(standins.SOURCES))
    if unknown:
        raise ValueError(f"sample_sources: unknown sources {', '.join(unknown)}")
    if spec.sample_sources and not spec.images.standin:
        raise ValueError("sample_sources needs images.standin (the stand-ins' image)")
    prefix = f"{PROJECT}-{spec.environment}"
    base = f"10.{spec.subnet_octet}.0"
    network = NetworkSpec(
        name=f"{prefix}-net",
        subnet=f"{base}.0/24",
        gateway=f"{base}.1",
        attachable=spec.environment in ("local", "test"),
    )
    api = _api(spec, network, prefix)
    services = [_proxy(spec, prefix), api, _redis(spec, prefix)]
    if spec.local_datastores:
        services.append(_postgres(spec, prefix))
    services += [_standin(spec, prefix, source) for source in spec.sample_sources]
    volumes = tuple(mount.source for svc in services for mount in svc.mounts if mount.source)
    return Topology(
        spec=spec,
        network=network,
        services=tuple(services),
        volumes=volumes,
        config_files={"Caddyfile": render_caddyfile(spec, upstream_service=api.name)},
    )


def render_caddyfile(spec: TopologySpec, upstream_service: str) -> str:
    """The proxy's whole configuration. It never changes at a rollout: Caddy finds
    the replicas through the swarm's DNS, which lists healthy tasks only."""
    # Imported here: the topology stays importable without the service's web stack.
    from jobsearch.middleware import MAX_BODY_BYTES  # noqa: PLC0415

    if spec.domain:
        email = f"\n\temail {spec.acme_email}" if spec.acme_email else ""
        global_options = f"\thttp_port {PROXY_HTTP_PORT}\n\thttps_port {PROXY_HTTPS_PORT}{email}"
        site = spec.domain
        hsts = '\t\tStrict-Transport-Security "max-age=31536000; includeSubDomains"\n'
    else:
        global_options = f"\thttp_port {PROXY_HTTP_PORT}\n\tauto_https off"
        site = f":{PROXY_HTTP_PORT}"
        hsts = ""
    return f"""# Generated by infra/topology.py, as a Docker config: a rollout never changes it.
{{
{global_options}
\tadmin localhost:2019
\tservers {{
\t\tprotocols h1 h2
\t\t# A client gets this long to send its headers, then its body; a slow or
\t\t# stalled one is cut off instead of holding a connection (and memory).
\t\ttimeouts {{
\t\t\tread_header {PROXY_READ_HEADER_TIMEOUT}
\t\t\tread_body {PROXY_READ_BODY_TIMEOUT}
\t\t\twrite {PROXY_WRITE_TIMEOUT}
\t\t\tidle {PROXY_IDLE_TIMEOUT}
\t\t}}
\t\tmax_header_size {PROXY_MAX_HEADER_SIZE}
\t}}
}}

{site} {{
\tlog {{
\t\toutput stdout
\t\tformat json
\t}}
\theader {{
{hsts}\t\t-Server
\t}}
\t# Scraped from the private network only, never through the public entry point.
\t@internal path /metrics /metrics/*
\trespond @internal 404
\t# The service's own limit: a larger body never reaches a replica.
\trequest_body {{
\t\tmax_size {MAX_BODY_BYTES}B
\t}}
\treverse_proxy {{
\t\t# The swarm's DNS lists a task only once its health check passes, and drops it
\t\t# before the task gets SIGTERM, or as soon as it dies. Caddy's active health
\t\t# checks cover static upstreams only, so the resolver is the health gate. No
\t\t# passive checks: Caddy 2.6 blames a healthy replica for a POST it failed to
\t\t# replay after another one died, then has no upstream left (tests/drills).
\t\tdynamic a {{
\t\t\tname tasks.{upstream_service}
\t\t\tport {SERVICE_PORT}
\t\t\trefresh 1s
\t\t}}
\t\t# Not round_robin: with one replica down, two concurrent picks can both land on it.
\t\tlb_policy least_conn
\t\t# A request that could not connect never reached a replica, so it is tried on
\t\t# another, POSTs included; one that was sent is never retried (a paid call may
\t\t# have been made).
\t\tlb_try_duration 10s
\t\tlb_try_interval 100ms
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
