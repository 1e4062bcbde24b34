"""The real program (infra/__main__.py), run under Pulumi's mocks for each stack.

Each graph is what the program registered with the engine: these tests read
its resources, their inputs as serialized (secrets still marked), their
dependencies and options, the stack outputs and the program's log.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import pytest
import yaml

from infra.alerts import ALERTS
from infra.components.database import migration_checksums
from infra.components.host import private_address
from infra.components.monitoring import CHECKLY_PROBES
from infra.config.load import load
from infra.policy.policies import RESOURCE_GUARDRAILS, STACK_GUARDRAILS, StackResource
from infra.topology import PROXY_HTTP_PORT, PROXY_HTTPS_PORT, SECRETS_DIR, SERVICE_UID
from tests.infra.pulumi.conftest import (
    EXISTING_HOST_KEY,
    EXISTING_SERVERS,
    REGISTRY_USER,
    variants,
)
from tests.infra.pulumi.graph import Graph, Resource, is_secret, plain_strings, reveal, run_program
from tests.infra.pulumi.harness import (
    FAKE_HOST_PRIVATE_KEY,
    FAKE_HOST_PUBLIC_KEY,
    FAKE_JOIN_TOKEN,
    SERVER_IPV4,
)
from tests.infra.pulumi.stack_config import STAGING_EXPORTS, committed_stack
from tests.infra.pulumi.test_config import DictSource

SERVICE = "docker:index/service:Service"
SECRET = "docker:index/secret:Secret"
CONFIG = "docker:index/serviceConfig:ServiceConfig"
NETWORK = "docker:index/network:Network"
MIGRATIONS = "pulumi-python:dynamic/jobsearch:Migrations"
REMOTE_COMMAND = "command:remote:Command"
LOCAL_COMMAND = "command:local:Command"
ALL = ("staging", "prod", "prod-existing", "dev", "staging-2", "staging-3")
EXPECTED_OUTPUTS = {
    "environment", "url", "host", "host_key", "image_ref", "proxy_image_ref", "redis_image_ref",
    "images_from", "schema_migrations", "monitored_alerts", "service_name", "service_network",
    "nodes", "docker_host", "separation",
}  # fmt: skip
SERVICE_SECRETS = {"DATABASE_URL", "RAPID_API_KEY", "THEIRSTACK_API_KEY", "SENTRY_DSN"}


def role(service: Resource) -> str:
    labels = {item["label"]: item["value"] for item in service["labels"]}
    return str(labels["org.jobsearch.role"])


def service(graph: Graph, of_role: str) -> Resource:
    [found] = [s for s in graph.of_type(SERVICE) if role(s) == of_role]
    return found


def container(service: Resource) -> dict[str, Any]:
    return dict(service["taskSpec"]["containerSpec"])


def env(service: Resource) -> dict[str, str]:
    return dict(container(service).get("env") or {})


def seconds(duration: str) -> int:
    assert duration.endswith("s"), duration
    assert not duration.endswith("ms"), duration
    return int(duration[:-1])


def worst_case_seconds(service: Resource) -> int:
    """The health check's worst case, as infra.topology.HealthCheck computes it."""
    check = container(service)["healthcheck"]
    per_check = seconds(check["interval"]) + seconds(check["timeout"])
    return seconds(check["startPeriod"]) + (int(check["retries"]) + 1) * per_check


def public_ports(firewall: Resource) -> list[int]:
    """The ports a firewall opens to the whole internet."""
    return sorted(
        int(rule["port"])
        for rule in firewall["rules"]
        if rule["sourceIps"] == ["0.0.0.0/0", "::/0"]
    )


def commands(graph: Graph) -> list[Resource]:
    return graph.of_type(REMOTE_COMMAND) + graph.of_type(LOCAL_COMMAND)


def decoded(config: Resource) -> str:
    return base64.b64decode(config["data"]).decode()


def secrets_of(name: str) -> list[str]:
    values = list(variants()[name].secrets.values())
    # The swarm's join tokens, and the replicas heartbeat's ping token.
    return [*values, FAKE_HOST_PRIVATE_KEY.strip(), FAKE_JOIN_TOKEN, *heartbeat_tokens(name)]


def heartbeat_tokens(name: str) -> list[str]:
    run = variants()[name]
    if "checklyApiKey" not in run.secrets:
        return []
    return [load(run.stack, DictSource(run)).heartbeat_token().get_secret_value()]


def advertise_address(graph: Graph) -> str:
    """Where the first manager's swarm listens: its private address on a VM the stack made."""
    if graph.of_type("hcloud:index/server:Server"):
        return private_address(0)
    return str(graph.outputs["host"])


# --- every stack ----------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_no_secret_appears_in_plain_text_anywhere(graphs: Mapping[str, Graph], name: str) -> None:
    graph = graphs[name]
    needles = secrets_of(name)
    for resource in graph.resources:
        for path, text in plain_strings(resource.inputs):
            leaked = [needle for needle in needles if needle in text]
            assert not leaked, f"{resource.name}{path} holds a secret in plain text"
    for path, text in plain_strings(graph.raw_outputs):
        assert not any(needle in text for needle in needles), f"stack output {path}"
    log = json.dumps(graph.logs)
    assert not any(needle in log for needle in needles)


@pytest.mark.parametrize("name", ALL)
def test_outputs_are_the_documented_ones_and_none_is_secret(
    graphs: Mapping[str, Graph], name: str
) -> None:
    raw = graphs[name].raw_outputs
    assert raw is not None
    assert set(raw) == EXPECTED_OUTPUTS
    for key, value in raw.items():
        assert not is_secret(value), f"output {key} is a secret"
        assert "4dabf18193072939515e22adb298388d" not in json.dumps(value), key


@pytest.mark.parametrize("name", ALL)
def test_every_secret_input_is_a_pulumi_secret(graphs: Mapping[str, Graph], name: str) -> None:
    graph = graphs[name]
    migrations = graph.of_type(MIGRATIONS)[0]
    assert migrations.secret("database_url")
    assert migrations.secret("app_password")
    assert migrations.secret("__provider")
    assert set(migrations.additional_secret_outputs) == {"database_url", "app_password"}
    for secret in graph.of_type(SECRET):
        assert secret.secret("data"), secret.name
        assert "data" in secret.additional_secret_outputs
    for provider in graph.resources:
        for key in ("token", "apiToken", "apiKey"):
            if provider.type.startswith("pulumi:providers:") and key in provider.inputs:
                assert provider.secret(key), f"{provider.name}.{key}"


@pytest.mark.parametrize("name", ALL)
def test_secrets_are_files_for_the_service_user_and_never_env_or_labels(
    graphs: Mapping[str, Graph], name: str
) -> None:
    graph = graphs[name]
    secrets = {s.name: s for s in graph.of_type(SECRET)}
    values = variants()[name].secrets
    expected = {"DATABASE_URL"} | {
        k for k, key in (
            ("RAPID_API_KEY", "rapidApiKey"),
            ("THEIRSTACK_API_KEY", "theirstackApiKey"),
            ("SENTRY_DSN", "sentryDsn"),
        ) if key in values
    }  # fmt: skip
    logical = {
        secret.name: {i["label"]: i["value"] for i in secret["labels"]}["org.jobsearch.name"]
        for secret in secrets.values()
    }
    assert set(logical.values()) == expected
    for secret in secrets.values():
        # Auto-named: a new value is a new secret, created before the old is deleted.
        assert "name" not in secret.inputs
        assert secret.delete_before_replace is False
        assert secret.provider.startswith(graph.named("host-docker").urn)
    api = service(graph, "api")
    mounts = container(api)["secrets"]
    assert {m["fileName"] for m in mounts} == {f"{SECRETS_DIR}/{n}" for n in expected}
    uid, gid = SERVICE_UID.split(":")
    for mount in mounts:
        assert (mount["fileUid"], mount["fileGid"], int(mount["fileMode"])) == (uid, gid, 0o400)
        assert mount["fileName"].rsplit("/", 1)[1] in expected
    # Each mount names the created secret (its ID and its generated name).
    assert set(secrets_urns(graph)) <= set(api.raw["property_dependencies"]["taskSpec"])
    needles = [*values.values()]
    for each in graph.of_type(SERVICE):
        assert not each.secret("taskSpec"), f"{each.name}: nothing secret, so it stays readable"
        variables = env(each)
        assert not set(variables) & SERVICE_SECRETS, each.name
        labels = json.dumps([each["labels"], container(each)["labels"]])
        text = json.dumps(variables) + labels
        assert not any(needle in text for needle in needles), each.name


def secrets_urns(graph: Graph) -> list[str]:
    return [secret.urn for secret in graph.of_type(SECRET)]


@pytest.mark.parametrize("name", ALL)
def test_datastores_then_migrations_then_the_api_then_the_proxy(
    graphs: Mapping[str, Graph], name: str
) -> None:
    graph = graphs[name]
    migrations = graph.of_type(MIGRATIONS)[0]
    api, proxy, redis = (service(graph, r) for r in ("api", "proxy", "redis"))
    swarm = graph.named("service-swarm")
    assert graph.depends_on(api, migrations), "the API may start before the migrations"
    assert graph.depends_on(api, redis)
    assert graph.depends_on(proxy, api)
    assert not graph.depends_on(migrations, api)
    assert not graph.depends_on(redis, api)
    for resource in [*graph.of_type(SERVICE), *graph.of_type(SECRET), *graph.of_type(CONFIG)]:
        assert graph.depends_on(resource, swarm), f"{resource.name} before swarm mode"
    network = graph.of_type(NETWORK)[0]
    assert graph.depends_on(network, swarm)
    for each in graph.of_type(SERVICE):
        # The service attaches to the created network by its ID.
        assert network.urn in each.raw["property_dependencies"]["taskSpec"], each.name


@pytest.mark.parametrize("name", ALL)
def test_the_engine_runs_health_gated_rollouts_and_rollbacks(
    graphs: Mapping[str, Graph], name: str
) -> None:
    graph = graphs[name]
    for each in graph.of_type(SERVICE):
        update, rollback = each["updateConfig"], each["rollbackConfig"]
        worst = worst_case_seconds(each)
        assert int(update["parallelism"]) == 1, each.name
        assert seconds(update["monitor"]) >= worst, each.name
        assert update["failureAction"] == "rollback", each.name
        assert update["maxFailureRatio"] == "0.0"
        assert seconds(rollback["monitor"]) >= worst, each.name
        converge = each["convergeConfig"]
        replicas = int(each["mode"]["replicated"]["replicas"])
        # `pulumi up` waits for the engine for as long as a whole rollout may take.
        assert seconds(converge["timeout"]) >= replicas * (worst + seconds(update["monitor"]))
        assert each.delete_before_replace is True, f"{each.name} has a fixed name"
        grace = seconds(container(each)["stopGracePeriod"])
        assert grace > 0
    api = service(graph, "api")
    assert api["updateConfig"]["order"] == "start-first"
    assert api["rollbackConfig"]["order"] == "start-first"
    assert seconds(container(api)["stopGracePeriod"]) == 30
    # One host port or one volume per node: those stop the old task first.
    for singleton in (service(graph, "proxy"), service(graph, "redis")):
        assert singleton["updateConfig"]["order"] == "stop-first", singleton.name


@pytest.mark.parametrize("name", ALL)
def test_the_service_is_the_topology(graphs: Mapping[str, Graph], name: str) -> None:
    graph = graphs[name]
    outputs = graph.outputs
    environment = outputs["environment"]
    assert {role(s) for s in graph.of_type(SERVICE)} == {"api", "proxy", "redis"}
    assert len(graph.of_type(SERVICE)) == 3, "the stacks' database is Supabase"
    api = service(graph, "api")
    assert api["name"] == outputs["service_name"] == f"jobsearch-{environment}-api"
    [network] = graph.of_type(NETWORK)
    assert network["name"] == outputs["service_network"] == f"jobsearch-{environment}-net"
    assert network["driver"] == "overlay"
    assert network["attachable"] is False, "no plain container joins a stack's network"
    [ipam] = network["ipamConfigs"]
    assert ipam["subnet"].endswith(".0/24")
    variables = env(api)
    assert variables["REDIS_URL"] == "redis://redis:6379/0"
    assert variables["FORWARDED_ALLOW_IPS"] == ipam["subnet"]
    for each in graph.of_type(SERVICE):
        spec = container(each)
        assert each["endpointSpec"]["mode"] == "dnsrr", each.name
        for port in each["endpointSpec"].get("ports") or []:
            assert port["publishMode"] == "host", each.name
        assert spec["readOnly"] is True
        assert spec["user"].split(":")[0] not in ("", "0", "root")
        assert spec["capDrops"] == ["ALL"]
        assert spec["healthcheck"]["tests"][0] == "CMD"
        assert "@sha256:" in spec["image"] or name == "dev", f"{each.name} runs by digest"
        assert each["taskSpec"]["restartPolicy"]["condition"] == "any"
        assert each["taskSpec"]["logDriver"]["options"] == {"max-size": "10m", "max-file": "5"}
        assert each["taskSpec"]["placement"]["prefs"] == ["spread=node.id"]
        assert "pids" not in json.dumps(each["taskSpec"]["resources"]).lower()
    assert not container(service(graph, "proxy")).get("secrets")
    assert not container(service(graph, "redis")).get("secrets")


@pytest.mark.parametrize("name", ALL)
def test_the_swarm_script_makes_swarm_mode_and_the_volumes(
    graphs: Mapping[str, Graph], name: str
) -> None:
    graph = graphs[name]
    script = graph.named("service-swarm")["create"]
    assert graph.named("service-swarm")["update"] == script
    environment = graph.outputs["environment"]
    assert f"docker swarm init --advertise-addr {advertise_address(graph)} " in script
    for volume, owner in (("caddy-data", "10002:10002"), ("redis-data", "999:999")):
        source = f"jobsearch-{environment}-{volume}"
        assert "docker volume create " in script
        assert f"-v {source}:/volume" in script
        assert f" {owner} /volume" in script
    mounted = {
        m["source"]
        for s in graph.of_type(SERVICE)
        for m in container(s)["mounts"]
        if m["type"] == "volume"
    }
    assert mounted == {f"jobsearch-{environment}-caddy-data", f"jobsearch-{environment}-redis-data"}


@pytest.mark.parametrize("name", ALL)
def test_the_caddyfile_is_a_config_that_resolves_the_api_tasks(
    graphs: Mapping[str, Graph], name: str
) -> None:
    graph = graphs[name]
    [config] = graph.of_type(CONFIG)
    assert "name" not in config.inputs, "auto-named: a new Caddyfile is a new config"
    caddyfile = decoded(config)
    assert f"name tasks.{graph.outputs['service_name']}" in caddyfile
    [mount] = container(service(graph, "proxy"))["configs"]
    assert mount["fileName"] == "/etc/caddy/Caddyfile"
    assert config.urn in service(graph, "proxy").raw["property_dependencies"]["taskSpec"]
    assert not [c for c in commands(graph) if "caddy reload" in json.dumps(c.inputs)]


@pytest.mark.parametrize("name", ["staging", "prod", "staging-2", "staging-3"])
def test_the_policy_pack_passes_on_the_deployed_stacks(
    graphs: Mapping[str, Graph], name: str
) -> None:
    graph = graphs[name]
    violations = [
        f"{guardrail.name}: {message}"
        for resource in graph.resources
        for guardrail in RESOURCE_GUARDRAILS
        for message in guardrail.check(
            resource.type, reveal(resource.inputs), resource.additional_secret_outputs
        )
    ]
    stack = [StackResource(r.type, r.name, reveal(r.inputs)) for r in graph.resources]
    violations += [f"{g.name}: {m}" for g in STACK_GUARDRAILS for m in g.check(stack)]
    if name == "staging":
        # One VM: fine for staging, which the pack does not guard; refused for prod.
        assert [v.partition(":")[0] for v in violations] == ["at-least-two-nodes"]
    else:
        assert violations == []


def test_the_policy_pack_would_stop_the_dev_stack(graphs: Mapping[str, Graph]) -> None:
    graph = graphs["dev"]
    stack = [StackResource(r.type, r.name, reveal(r.inputs)) for r in graph.resources]
    failing = {g.name for g in STACK_GUARDRAILS if g.check(stack)}
    failing |= {
        g.name
        for r in graph.resources
        for g in RESOURCE_GUARDRAILS
        if g.check(r.type, reveal(r.inputs), r.additional_secret_outputs)
    }
    # Plain HTTP, images by tag and one engine: fine on a laptop, refused for prod.
    assert failing == {"https-on", "images-by-digest", "at-least-two-nodes"}


# --- staging --------------------------------------------------------------------


def test_staging_resource_counts(staging: Graph) -> None:
    assert staging.type_counts() == {
        "jobsearch:platform:Host": 1,
        "pulumi:providers:hcloud": 1,
        "tls:index/privateKey:PrivateKey": 1,
        "hcloud:index/sshKey:SshKey": 1,
        "hcloud:index/firewall:Firewall": 1,
        "hcloud:index/network:Network": 1,
        "hcloud:index/networkSubnet:NetworkSubnet": 1,
        "hcloud:index/serverNetwork:ServerNetwork": 1,
        "hcloud:index/server:Server": 1,
        # cloud-init wait, swarm init and labels, the service's swarm mode and volumes,
        # the replicas heartbeat
        REMOTE_COMMAND: 4,
        "jobsearch:platform:ReplicaWatch": 1,
        "pulumi:providers:docker": 1,
        "jobsearch:platform:Database": 1,
        MIGRATIONS: 1,
        "jobsearch:platform:Service": 1,
        NETWORK: 1,
        SECRET: 3,  # DATABASE_URL, RAPID_API_KEY, THEIRSTACK_API_KEY (no Sentry DSN)
        CONFIG: 1,  # the Caddyfile
        SERVICE: 3,  # api, proxy, redis
        "jobsearch:platform:Domain": 1,
        "pulumi:providers:cloudflare": 1,
        "cloudflare:index/record:Record": 1,
        "jobsearch:platform:Monitoring": 1,
        "pulumi:providers:checkly": 1,
        "checkly:index/alertChannel:AlertChannel": 2,
        # One API check per alert a Checkly check probes.
        "checkly:index/check:Check": len([a for a in ALERTS if a.probe in CHECKLY_PROBES]),
        "checkly:index/sslMonitor:SslMonitor": 1,
        "checkly:index/heartbeatMonitor:HeartbeatMonitor": 1,
    }


def test_staging_runs_the_images_its_config_names(staging: Graph) -> None:
    values = committed_stack("staging").values
    images = {role(s): container(s)["image"] for s in staging.of_type(SERVICE)}
    assert images == {
        "api": values["imageRef"],
        "proxy": values["proxyImage"],
        "redis": values["redisImage"],
    }
    assert "docker:index/remoteImage:RemoteImage" not in staging.type_counts(), (
        "every node pulls the digest itself"
    )
    assert staging.outputs["image_ref"] == values["imageRef"]
    assert staging.outputs["images_from"] == "config"
    assert staging.reads == [], "staging reads no other stack"


def test_every_node_pulls_with_the_registry_login(graphs: Mapping[str, Graph]) -> None:
    """`--with-registry-auth`: with no `auth` of its own, a service is created and updated
    with the provider's login for its image's registry, so a rotated registry password is
    an update of the provider, never a replacement of the services."""
    graph = graphs["prod-existing"]
    [provider] = graph.of_type("pulumi:providers:docker")
    auth = provider["registryAuth"]
    # A provider's inputs reach the engine JSON-encoded.
    [login] = json.loads(auth) if isinstance(auth, str) else auth
    assert login["address"] == "registry.example.com"
    assert login["username"] == REGISTRY_USER
    assert provider.secret("registryAuth")
    api = next(each for each in graph.of_type(SERVICE) if each.name.endswith("-api"))
    image = api["taskSpec"]["containerSpec"]["image"]
    assert image.startswith(f"{login['address']}/"), "the login is the image's registry's"
    for each in graph.of_type(SERVICE):
        assert "auth" not in each.inputs, each.name
    [staging_provider] = graphs["staging"].of_type("pulumi:providers:docker")
    assert "registryAuth" not in staging_provider.inputs, "no login: anonymous pulls"


def test_staging_creates_a_vm_it_can_verify(staging: Graph) -> None:
    server = staging.named("host-server")
    assert server["serverType"] == "cx22"
    assert server["deleteProtection"] is False
    assert server.secret("userData"), "user data carries the host's private key"
    assert server.ignore_changes == ["userData", "image"]
    cloud = yaml.safe_load(server["userData"])
    assert cloud["ssh_keys"]["ed25519_public"] == FAKE_HOST_PUBLIC_KEY.strip()
    assert cloud["users"][0]["ssh_authorized_keys"] == [
        committed_stack("staging").values["sshPublicKey"]
    ]
    assert {"docker.io", "unattended-upgrades", "ufw"} <= set(cloud["packages"])
    allowed = [c[2] for c in cloud["runcmd"] if c[:2] == ["ufw", "allow"]]
    assert allowed == ["22/tcp", "80/tcp", "443/tcp", *["from"] * 4]
    firewall = staging.named("host-firewall")
    assert public_ports(firewall) == [22, 80, 443]
    assert all(rule["direction"] == "in" for rule in firewall["rules"])
    docker = staging.named("host-docker")
    assert docker["host"] == f"ssh://deploy@{SERVER_IPV4}:22"
    options = json.loads(docker["sshOpts"])
    assert f"KnownHostsCommand=/bin/echo %H {FAKE_HOST_PUBLIC_KEY.strip()}" in options
    assert "StrictHostKeyChecking=yes" in options
    wait = staging.named("host-cloud-init")
    assert wait.urn in docker.dependencies, "Docker is used only once cloud-init is done"
    assert server.urn in wait.dependencies
    for command in commands(staging):
        assert command["connection"]["hostKey"] == FAKE_HOST_PUBLIC_KEY.strip()
    # What the deploy workflow's smoke test pins when it logs in to the host.
    assert staging.outputs["host_key"] == FAKE_HOST_PUBLIC_KEY.strip()


def test_staging_dns_and_https(staging: Graph) -> None:
    record = staging.named("domain-record")
    assert record["name"] == "staging-api.example.com"
    assert (record["type"], record["content"], record["proxied"]) == ("A", SERVER_IPV4, False)
    proxy = service(staging, "proxy")
    ports = {
        (p["targetPort"], p["publishedPort"], p["publishMode"])
        for p in proxy["endpointSpec"]["ports"]
    }
    assert ports == {(PROXY_HTTP_PORT, 80, "host"), (PROXY_HTTPS_PORT, 443, "host")}
    caddyfile = decoded(staging.of_type(CONFIG)[0])
    assert "staging-api.example.com {" in caddyfile
    assert "Strict-Transport-Security" in caddyfile
    assert staging.outputs["url"] == "https://staging-api.example.com"


def test_every_alert_has_a_monitor_carrying_its_runbook_summary_and_severity(
    staging: Graph, prod: Graph
) -> None:
    for graph, with_sentry in ((staging, False), (prod, True)):
        expected = {a.name for a in ALERTS if a.probe != "error_rate" or with_sentry}
        assert set(graph.outputs["monitored_alerts"]) == expected
        for alert in ALERTS:
            if alert.name not in expected:
                continue
            monitor = graph.named(f"monitoring-{alert.name}")
            url = alert.runbook_url()
            if alert.probe == "replicas":
                assert monitor.type == "checkly:index/heartbeatMonitor:HeartbeatMonitor"
                assert monitor["description"] == (
                    f"[{alert.severity}] {alert.summary} Runbook: {url}"
                )
                assert f"severity:{alert.severity}" in monitor["tags"]
                assert f"runbook:{url}" in monitor["tags"]
                continue
            if alert.probe == "error_rate":
                assert monitor.type == "sentry:index/sentryMetricAlert:SentryMetricAlert"
                assert url in monitor["name"]
                assert alert.summary in monitor["name"]
                assert monitor["triggers"][0]["label"] == alert.severity
                continue
            assert monitor["description"] == f"[{alert.severity}] {alert.summary} Runbook: {url}"
            assert f"severity:{alert.severity}" in monitor["tags"]
            assert f"runbook:{url}" in monitor["tags"]
            assert len(monitor["locations"]) >= 2
            channels = {c.urn for c in graph.of_type("checkly:index/alertChannel:AlertChannel")}
            assert channels <= set(monitor.dependencies)


def test_uptime_checks_probe_health_and_readiness_every_minute(staging: Graph) -> None:
    down = staging.named("monitoring-JobSearchApiDown")
    assert down["request"]["url"] == "https://staging-api.example.com/health"
    assert down["frequency"] == 1
    assert down["runParallel"] is True
    # Two locations: both must fail before it alerts.
    assert down["alertSettings"]["parallelRunFailureThresholds"] == [
        {"enabled": True, "percentage": 100}
    ]
    ready = staging.named("monitoring-JobSearchApiNotReady")
    assert ready["request"]["url"] == "https://staging-api.example.com/ready"
    assert staging.named("monitoring-JobSearchTlsCertificateExpiring")["request"] == {
        "hostname": "staging-api.example.com",
        "port": 443,
        "alertDaysBeforeExpiry": 14,
    }
    webhook = staging.named("monitoring-webhook")
    assert is_secret(webhook.inputs["webhook"]["url"]), "the webhook URL holds a token"


def test_external_checks_probe_the_https_port_the_proxy_answers_on(
    graphs: Mapping[str, Graph],
) -> None:
    graph = graphs["prod-existing"]
    down = graph.named("monitoring-JobSearchApiDown")
    assert down["request"]["url"] == "https://api.example.com:8443/health"
    certificate = graph.named("monitoring-JobSearchTlsCertificateExpiring")
    assert certificate["request"]["port"] == 8443
    assert graph.outputs["url"] == "https://api.example.com:8443"


# --- prod ----------------------------------------------------------------------


def test_prod_runs_what_staging_runs(prod: Graph) -> None:
    assert [read["id"] for read in prod.reads] == ["organization/jobsearch/staging"]
    assert prod.reads[0]["type"] == "pulumi:pulumi:StackReference"
    outputs = prod.outputs
    assert outputs["image_ref"] == STAGING_EXPORTS["image_ref"]
    assert outputs["proxy_image_ref"] == STAGING_EXPORTS["proxy_image_ref"]
    assert outputs["redis_image_ref"] == STAGING_EXPORTS["redis_image_ref"]
    assert outputs["images_from"] == "organization/jobsearch/staging"
    images = {role(s): container(s)["image"] for s in prod.of_type(SERVICE)}
    assert images == {
        "api": STAGING_EXPORTS["image_ref"],
        "proxy": STAGING_EXPORTS["proxy_image_ref"],
        "redis": STAGING_EXPORTS["redis_image_ref"],
    }
    assert not [line for line in prod.logs if line["level"] == "WARNING"]


def test_prod_is_protected_and_bigger(prod: Graph) -> None:
    server = prod.named("host-server")
    assert server.protect is True
    assert server["deleteProtection"] is True
    assert server["rebuildProtection"] is True
    assert int(service(prod, "api")["mode"]["replicated"]["replicas"]) == 3
    assert len(prod.named("monitoring-JobSearchApiDown")["locations"]) == 3


def test_prod_frontend_link_and_cors_come_from_one_list(prod: Graph) -> None:
    variable = prod.named("frontend-backend-url")
    assert variable["key"] == "BACKEND_URL"
    assert variable["value"] == "https://api.example.com"
    assert variable["targets"] == ["production"]
    origins = committed_stack("prod").values["frontendOrigins"]
    api = service(prod, "api")
    assert env(api)["CORS_ORIGINS"] == ",".join(origins)
    assert env(api)["APP_ENV"] == "production"


def test_prod_error_rate_alert(prod: Graph) -> None:
    alert = prod.named("monitoring-JobSearchApiHighErrorRate")
    assert alert["environment"] == "production"
    assert alert["timeWindow"] == 5
    assert alert["triggers"][0]["alertThreshold"] == 20
    assert alert["organization"] == "acme"


def test_prod_override_is_used_and_logged(graphs: Mapping[str, Graph]) -> None:
    graph = graphs["prod-existing"]
    override = variants()["prod-existing"].values["imageRef"]
    assert graph.outputs["image_ref"] == override
    assert container(service(graph, "api"))["image"] == override
    warnings = [line["message"] for line in graph.logs if line["level"] == "WARNING"]
    assert len(warnings) == 1
    assert override in warnings[0]
    assert STAGING_EXPORTS["image_ref"] in warnings[0]
    assert "pulumi config rm jobsearch:imageRef -s prod" in warnings[0]


def test_an_existing_server_is_reached_with_its_pinned_key(graphs: Mapping[str, Graph]) -> None:
    graph = graphs["prod-existing"]
    assert not [r for r in graph.resources if r.type.startswith(("hcloud:", "tls:"))]
    docker = graph.named("host-docker")
    assert docker["host"] == "ssh://deploy@198.51.100.7:22"
    assert f"KnownHostsCommand=/bin/echo %H {EXISTING_HOST_KEY}" in json.loads(docker["sshOpts"])
    pinned = {address: key for address, key, _ in EXISTING_SERVERS}
    for command in commands(graph):
        # Each server is reached with its own pinned key, and only with it.
        assert command["connection"]["hostKey"] == pinned[command["connection"]["host"]]
    assert graph.named("host-swarm")["connection"]["host"] == "198.51.100.7"
    assert graph.outputs["nodes"] == [address for address, _, _ in EXISTING_SERVERS]
    # What `ops status` asks the swarm through: the first manager's engine.
    assert graph.outputs["docker_host"] == docker["host"]
    record = graph.named("domain-record")
    assert (record["type"], record["content"]) == ("A", "198.51.100.7")
    assert graph.outputs["host"] == "198.51.100.7"
    assert graph.outputs["host_key"] == EXISTING_HOST_KEY


# --- dev ------------------------------------------------------------------------


def test_the_documented_dev_stack_runs_on_the_developers_engine(
    graphs: Mapping[str, Graph],
) -> None:
    graph = graphs["dev"]
    kinds = set(graph.type_counts())
    assert not {
        k
        for k in kinds
        if k.startswith(("hcloud:", "cloudflare:", "checkly:", "sentry:", "vercel:"))
    }
    assert graph.named("host-docker")["host"] == "unix:///var/run/docker.sock"
    assert len(graph.of_type(LOCAL_COMMAND)) == 1, "swarm mode and volumes"
    for command in graph.of_type(LOCAL_COMMAND):
        assert command["environment"] == {"DOCKER_HOST": "unix:///var/run/docker.sock"}
        assert command["interpreter"] == ["/bin/sh", "-c"]
    assert graph.outputs["url"] == "http://127.0.0.1:8088"
    proxy = service(graph, "proxy")
    ports = proxy["endpointSpec"]["ports"]
    assert [(p["targetPort"], p["publishedPort"], p["publishMode"]) for p in ports] == [
        (PROXY_HTTP_PORT, 8088, "host")
    ]
    assert "auto_https off" in decoded(graph.of_type(CONFIG)[0])
    assert "--advertise-addr 127.0.0.1 " in graph.named("service-swarm")["create"]
    api = service(graph, "api")
    assert container(api)["image"] == variants()["dev"].values["imageRef"]
    assert api["name"] == graph.outputs["service_name"] == "jobsearch-dev-api"
    assert env(api)["APP_ENV"] == "development"
    assert "auth" not in api.inputs, "no registry login: the engine has the image"


def test_the_migrations_input_lists_every_file_with_its_checksum(staging: Graph) -> None:
    migrations = staging.of_type(MIGRATIONS)[0]
    assert migrations["migrations"] == migration_checksums()
    assert staging.outputs["schema_migrations"] == sorted(migration_checksums())


def test_a_new_image_is_a_rolling_update_of_the_api_alone(staging: Graph) -> None:
    newer = committed_stack("staging").with_values(
        imageRef="registry.example.com/acme/jobsearch-api@sha256:" + "77" * 32
    )
    graph = run_program(newer)
    assert graph.error is None
    # The same resources with the same names: Pulumi updates the service in place
    # and the engine rolls it out; nothing is replaced, the proxy keeps its config.
    assert sorted(r.name for r in graph.resources) == sorted(r.name for r in staging.resources)
    for kind in (SERVICE, NETWORK):
        before = {r.name: r.inputs for r in staging.of_type(kind)}
        after = {r.name: r.inputs for r in graph.of_type(kind)}
        changed = {name for name in before if before[name] != after[name]}
        assert changed == ({"service-api"} if kind == SERVICE else set()), kind
    assert service(graph, "api")["name"] == service(staging, "api")["name"]
    assert decoded(graph.of_type(CONFIG)[0]) == decoded(staging.of_type(CONFIG)[0])


def test_a_rotated_secret_is_a_new_secret_object(staging: Graph) -> None:
    run = committed_stack("staging")
    run.secrets["rapidApiKey"] = "fake-rapid-api-key-rotated-0e0e"
    graph = run_program(run)
    assert graph.error is None
    before = {r.name: r["data"] for r in staging.of_type(SECRET)}
    after = {r.name: r["data"] for r in graph.of_type(SECRET)}
    assert {n for n in before if before[n] != after[n]} == {"service-secret-rapid-api-key"}
    assert base64.b64decode(after["service-secret-rapid-api-key"]).decode() == (
        "fake-rapid-api-key-rotated-0e0e"
    )


# --- configuration errors, end to end -------------------------------------------


def test_a_bad_config_stops_the_program_before_any_resource() -> None:
    run = committed_stack("staging")
    run.secrets["databaseUrl"] = run.secrets["databaseUrl"].replace(":5432/", ":6543/")
    graph = run_program(run)
    assert graph.error is not None
    assert graph.error["type"] == "ConfigError"
    message = graph.error["message"]
    assert "jobsearch:databaseUrl points at the transaction pooler" in message
    assert "Fix: pulumi config set --secret jobsearch:databaseUrl" in message
    assert "-s staging" in message
    assert "FakeDbAdminPw" not in json.dumps(graph.error)
    assert graph.resources == []


def test_prod_refuses_a_staging_stack_that_exports_no_image() -> None:
    run = committed_stack("prod")
    run.staging_exports = {"url": "https://staging-api.example.com"}
    graph = run_program(run)
    assert graph.error is not None
    assert (
        "stack organization/jobsearch/staging exports no digest-pinned image_ref"
        in graph.error["message"]
    )
    assert "pulumi up -s organization/jobsearch/staging" in graph.error["message"]
    assert not graph.of_type(SERVICE)


def test_the_real_policy_pack_passes_every_prod_resource(prod: Graph) -> None:
    from tests.infra.policy.analyzer import running_pack

    with running_pack() as analyzer:
        for resource in prod.resources:
            found = analyzer.analyze(
                resource.type, reveal(resource.inputs), resource.additional_secret_outputs
            )
            assert found == [], f"{resource.name}: {found}"
        stack = [(r.type, r.name, reveal(r.inputs)) for r in prod.resources]
        assert analyzer.analyze_stack(stack) == []
