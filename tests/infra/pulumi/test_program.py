"""The real program (infra/__main__.py), run under Pulumi's mocks for each stack.

Each graph is what the program registered with the engine: these tests read
its resources, their inputs as serialized (secrets still marked), their
dependencies and options, the stack outputs and the program's log.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest
import yaml

from infra.alerts import ALERTS
from infra.components.database import migration_checksums
from infra.policy.policies import RESOURCE_GUARDRAILS, STACK_GUARDRAILS, StackResource
from infra.topology import PROXY_HTTPS_PORT
from tests.infra.pulumi.conftest import EXISTING_HOST_KEY, variants
from tests.infra.pulumi.graph import Graph, Resource, is_secret, plain_strings, reveal, run_program
from tests.infra.pulumi.harness import FAKE_HOST_PRIVATE_KEY, FAKE_HOST_PUBLIC_KEY, SERVER_IPV4
from tests.infra.pulumi.stack_config import STAGING_EXPORTS, committed_stack

CONTAINER = "docker:index/container:Container"
MIGRATIONS = "pulumi-python:dynamic/jobsearch:Migrations"
REMOTE_COMMAND = "command:remote:Command"
LOCAL_COMMAND = "command:local:Command"
ALL = ("staging", "prod", "prod-existing", "dev")
EXPECTED_OUTPUTS = {
    "environment", "url", "host", "host_key", "image_ref", "proxy_image_ref", "redis_image_ref",
    "images_from", "generation", "replicas", "schema_migrations", "monitored_alerts",
    "service_network",
}  # fmt: skip


def role(container: Resource) -> str:
    labels = {item["label"]: item["value"] for item in container["labels"]}
    return str(labels["org.jobsearch.role"])


def containers(graph: Graph, of_role: str) -> list[Resource]:
    """In the topology's order (registration order is asynchronous)."""
    found = [c for c in graph.of_type(CONTAINER) if role(c) == of_role]
    return sorted(found, key=lambda c: (len(c.name), c.name))


def env(container: Resource) -> dict[str, str]:
    return dict(entry.partition("=")[::2] for entry in container["envs"])


def commands(graph: Graph) -> list[Resource]:
    return graph.of_type(REMOTE_COMMAND) + graph.of_type(LOCAL_COMMAND)


def secrets_of(name: str) -> list[str]:
    values = list(variants()[name].secrets.values())
    return [*values, FAKE_HOST_PRIVATE_KEY.strip()]


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
    for replica in containers(graph, "api"):
        assert replica.secret("envs"), replica.name
        assert replica.additional_secret_outputs == ["envs"]
        assert "DATABASE_URL" in env(replica)
    for other in containers(graph, "proxy") + containers(graph, "redis"):
        assert not other.secret("envs"), f"{other.name} has no secret; its envs stay readable"
    for provider in graph.resources:
        for key in ("token", "apiToken", "apiKey"):
            if provider.type.startswith("pulumi:providers:") and key in provider.inputs:
                assert provider.secret(key), f"{provider.name}.{key}"


@pytest.mark.parametrize("name", ALL)
def test_migrations_run_before_any_replica_and_the_proxy_switches_after_them(
    graphs: Mapping[str, Graph], name: str
) -> None:
    graph = graphs[name]
    migrations = graph.of_type(MIGRATIONS)[0]
    replicas = containers(graph, "api")
    for replica in replicas:
        assert graph.depends_on(replica, migrations), f"{replica.name} may start before migrations"
    switch = graph.named("service-proxy-config")
    for replica in replicas:
        assert replica.urn in switch.dependencies, "the proxy switches only to healthy replicas"
    assert containers(graph, "proxy")[0].urn in switch.dependencies
    assert not graph.depends_on(migrations, replicas[0])


@pytest.mark.parametrize("name", ALL)
def test_the_service_is_the_topology(graphs: Mapping[str, Graph], name: str) -> None:
    graph = graphs[name]
    outputs = graph.outputs
    generation = outputs["generation"]
    replicas = containers(graph, "api")
    assert [r["name"] for r in replicas] == outputs["replicas"]
    assert len(containers(graph, "proxy")) == len(containers(graph, "redis")) == 1
    assert len(graph.of_type(CONTAINER)) == len(replicas) + 2
    network = graph.of_type("docker:index/network:Network")[0]
    assert network["name"] == outputs["service_network"]
    [ipam] = network["ipamConfigs"]
    proxy_address = containers(graph, "proxy")[0]["networksAdvanced"][0]["ipv4Address"]
    # The proxy's fixed address is outside the range replicas get theirs from.
    assert ipam["ipRange"].endswith(".128/25")
    assert proxy_address.endswith(".2")
    for index, replica in enumerate(replicas, start=1):
        assert replica["networksAdvanced"][0]["aliases"] == [f"api-{generation}-{index}"]
        assert replica["networkMode"] == network["name"]
        # Replaced create-before-delete, waiting for Docker's "healthy".
        assert replica.delete_before_replace is False
        assert replica["wait"] is True
        assert replica["destroyGraceSeconds"] == replica["stopTimeout"] == 30
        variables = env(replica)
        assert variables["REDIS_URL"] == "redis://redis:6379/0"
        assert variables["DATABASE_URL"].startswith("postgresql://jobsearch_app")
        assert "postgres:" not in variables["DATABASE_URL"].split("@")[0]
    for fixed in containers(graph, "proxy") + containers(graph, "redis"):
        assert fixed.delete_before_replace is True, f"{fixed.name} has a fixed name"
    for container in graph.of_type(CONTAINER):
        assert container["readOnly"] is True
        assert container["user"].split(":")[0] not in ("", "0", "root")
        assert container["capabilities"]["drops"] == ["ALL"]
        assert container["securityOpts"] == ["no-new-privileges:true"]
        assert container["healthcheck"]["tests"][0] == "CMD"
        assert container["restart"] == "unless-stopped"
        assert container["logOpts"] == {"max-size": "10m", "max-file": "5"}


@pytest.mark.parametrize("name", ALL)
def test_the_caddyfile_lists_exactly_the_new_replicas(
    graphs: Mapping[str, Graph], name: str
) -> None:
    graph = graphs[name]
    caddyfile = graph.named("service-proxy-config")["stdin"]
    upstreams = next(line for line in caddyfile.splitlines() if "reverse_proxy" in line)
    aliases = [f"{r['networksAdvanced'][0]['aliases'][0]}:8000" for r in containers(graph, "api")]
    assert upstreams.split()[1:-1] == aliases
    state = graph.named("service-proxy-state")
    assert state["stdin"] == caddyfile, "the first Caddyfile is the same one"
    assert state.ignore_changes == ["stdin"]
    assert state.urn in containers(graph, "proxy")[0].dependencies, "state before the proxy"


@pytest.mark.parametrize("name", ["staging", "prod"])
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
    # Plain HTTP and images by tag: fine on a laptop, refused for prod.
    assert failing == {"https-on", "images-by-digest"}


# --- staging --------------------------------------------------------------------


def test_staging_resource_counts(staging: Graph) -> None:
    assert staging.type_counts() == {
        "jobsearch:platform:Host": 1,
        "pulumi:providers:hcloud": 1,
        "tls:index/privateKey:PrivateKey": 1,
        "hcloud:index/sshKey:SshKey": 1,
        "hcloud:index/firewall:Firewall": 1,
        "hcloud:index/server:Server": 1,
        REMOTE_COMMAND: 3,  # cloud-init wait, proxy state, proxy switch
        "pulumi:providers:docker": 1,
        "jobsearch:platform:Database": 1,
        MIGRATIONS: 1,
        "jobsearch:platform:Service": 1,
        "docker:index/remoteImage:RemoteImage": 3,
        "docker:index/network:Network": 1,
        CONTAINER: 4,
        "jobsearch:platform:Domain": 1,
        "pulumi:providers:cloudflare": 1,
        "cloudflare:index/record:Record": 1,
        "jobsearch:platform:Monitoring": 1,
        "pulumi:providers:checkly": 1,
        "checkly:index/alertChannel:AlertChannel": 2,
        "checkly:index/check:Check": 4,
        "checkly:index/sslMonitor:SslMonitor": 1,
    }


def test_staging_runs_the_images_its_config_names(staging: Graph) -> None:
    values = committed_stack("staging").values
    pulled = {r["name"]: r for r in staging.of_type("docker:index/remoteImage:RemoteImage")}
    assert set(pulled) == {values["imageRef"], values["proxyImage"], values["redisImage"]}
    assert all(image["keepLocally"] is True for image in pulled.values())
    service = staging.named("service-image-service")
    for replica in containers(staging, "api"):
        # The container runs the exact image pulled by digest.
        assert replica.raw["property_dependencies"]["image"] == [service.urn]
    assert staging.outputs["image_ref"] == values["imageRef"]
    assert staging.outputs["images_from"] == "config"
    assert staging.reads == [], "staging reads no other stack"


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
    allowed = sorted(int(c[2].split("/")[0]) for c in cloud["runcmd"] if c[:2] == ["ufw", "allow"])
    assert allowed == [22, 80, 443]
    firewall = staging.named("host-firewall")
    assert sorted(int(rule["port"]) for rule in firewall["rules"]) == [22, 80, 443]
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
    proxy = containers(staging, "proxy")[0]
    ports = {(p["internal"], p["external"]) for p in proxy["ports"]}
    assert ports == {(8080, 80), (PROXY_HTTPS_PORT, 443)}
    caddyfile = staging.named("service-proxy-config")["stdin"]
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
    pulled = {r["name"] for r in prod.of_type("docker:index/remoteImage:RemoteImage")}
    assert pulled == {
        STAGING_EXPORTS[k] for k in ("image_ref", "proxy_image_ref", "redis_image_ref")
    }
    assert not [line for line in prod.logs if line["level"] == "WARNING"]


def test_prod_is_protected_and_bigger(prod: Graph) -> None:
    server = prod.named("host-server")
    assert server.protect is True
    assert server["deleteProtection"] is True
    assert server["rebuildProtection"] is True
    assert len(containers(prod, "api")) == 3
    assert len(prod.named("monitoring-JobSearchApiDown")["locations"]) == 3


def test_prod_frontend_link_and_cors_come_from_one_list(prod: Graph) -> None:
    variable = prod.named("frontend-backend-url")
    assert variable["key"] == "BACKEND_URL"
    assert variable["value"] == "https://api.example.com"
    assert variable["targets"] == ["production"]
    origins = committed_stack("prod").values["frontendOrigins"]
    for replica in containers(prod, "api"):
        assert env(replica)["CORS_ORIGINS"] == ",".join(origins)
        assert env(replica)["APP_ENV"] == "production"


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
    assert {r["name"] for r in graph.of_type("docker:index/remoteImage:RemoteImage")} >= {override}
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
    for command in commands(graph):
        assert command["connection"]["host"] == "198.51.100.7"
        assert command["connection"]["hostKey"] == EXISTING_HOST_KEY
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
    assert "docker:index/remoteImage:RemoteImage" not in kinds, "a dev stack pulls nothing"
    assert graph.named("host-docker")["host"] == "unix:///var/run/docker.sock"
    assert len(graph.of_type(LOCAL_COMMAND)) == 2
    for command in graph.of_type(LOCAL_COMMAND):
        assert command["environment"] == {"DOCKER_HOST": "unix:///var/run/docker.sock"}
        assert command["interpreter"] == ["/bin/sh", "-c"]
    assert graph.outputs["url"] == "http://127.0.0.1:8088"
    proxy = containers(graph, "proxy")[0]
    assert [(p["ip"], p["external"]) for p in proxy["ports"]] == [("127.0.0.1", 8088)]
    assert "auto_https off" in graph.named("service-proxy-config")["stdin"]
    replica = containers(graph, "api")[0]
    assert replica["image"] == variants()["dev"].values["imageRef"]
    assert replica["name"].startswith("jobsearch-dev-api-")
    assert env(replica)["APP_ENV"] == "development"


def test_the_migrations_input_lists_every_file_with_its_checksum(staging: Graph) -> None:
    migrations = staging.of_type(MIGRATIONS)[0]
    assert migrations["migrations"] == migration_checksums()
    assert staging.outputs["schema_migrations"] == sorted(migration_checksums())


def test_a_new_image_changes_every_replica_name_and_the_caddyfile(staging: Graph) -> None:
    newer = committed_stack("staging").with_values(
        imageRef="registry.example.com/acme/jobsearch-api@sha256:" + "77" * 32
    )
    graph = run_program(newer)
    assert graph.error is None
    old = [r["name"] for r in containers(staging, "api")]
    new = [r["name"] for r in containers(graph, "api")]
    assert len(new) == len(old)
    assert not set(new) & set(old)
    # Same logical resources: Pulumi replaces them (create-before-delete), it does
    # not delete one set and create another.
    assert [r.name for r in containers(graph, "api")] == [
        r.name for r in containers(staging, "api")
    ]
    assert (
        graph.named("service-proxy-config")["stdin"]
        != staging.named("service-proxy-config")["stdin"]
    )
    # What does not change keeps its name: no downtime for the proxy.
    assert containers(graph, "proxy")[0]["name"] == containers(staging, "proxy")[0]["name"]


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
    assert not graph.of_type(CONTAINER)


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
