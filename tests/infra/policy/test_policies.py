"""Each guardrail passing and failing, as a plain function and through the real
policy pack (its analyzer process, asked over gRPC as the Pulumi engine asks)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from infra.policy import policies
from infra.policy.policies import (
    CONTAINER,
    DNS_RECORD,
    REMOTE_IMAGE,
    RESOURCE_GUARDRAILS,
    STACK_GUARDRAILS,
    VERCEL_VARIABLE,
    StackResource,
    at_least_two_nodes,
    at_least_two_replicas,
    cors_without_wildcard,
    health_checked,
    https_on,
    images_by_digest,
    non_root,
    read_only,
    restarts,
    rotates_logs,
    secret_settings_are_secrets,
)
from infra.topology import NODE_MARKER, PROXY_HTTPS_PORT
from tests.infra.policy.analyzer import Analyzer, running_pack

DIGEST = "sha256:" + "0a" * 32
CADDYFILE_WITH_TLS = "api.example.com {\n\treverse_proxy api-1:8000\n}\n"


def container(**changes: Any) -> dict[str, Any]:
    """A replica as the stack declares it (Pulumi's property names)."""
    props: dict[str, Any] = {
        "name": "jobsearch-prod-api-0a0a0a0a1234-1",
        "image": DIGEST,
        "user": "10001:10001",
        "readOnly": True,
        "restart": "unless-stopped",
        "healthcheck": {"tests": ["CMD", "python", "-m", "jobsearch.healthcheck"]},
        "logDriver": "json-file",
        "logOpts": {"max-size": "10m", "max-file": "5"},
        "envs": ["APP_ENV=production", "CORS_ORIGINS=https://app.example.com", "DATABASE_URL=x"],
        "labels": [{"label": "org.jobsearch.role", "value": "api"}],
        "ports": [],
        "capabilities": {"drops": ["ALL"]},
        "memory": 512,
        "cpus": "1",
    }
    props.update(changes)
    return props


def proxy(**changes: Any) -> dict[str, Any]:
    props = container(
        name="jobsearch-prod-proxy",
        user="10002:10002",
        envs=["XDG_DATA_HOME=/data"],
        labels=[{"label": "org.jobsearch.role", "value": "proxy"}],
        ports=[{"internal": 8080, "external": 80}, {"internal": PROXY_HTTPS_PORT, "external": 443}],
    )
    props.update(changes)
    return props


def good_stack() -> list[StackResource]:
    return [
        StackResource(CONTAINER, "service-api-1", container()),
        StackResource(CONTAINER, "service-api-2", container(name="jobsearch-prod-api-x-2")),
        StackResource(CONTAINER, "service-proxy", proxy()),
        StackResource(
            "command:remote:Command", "service-proxy-config", {"stdin": CADDYFILE_WITH_TLS}
        ),
        StackResource(DNS_RECORD, "domain-record", {"name": "api.example.com", "type": "A"}),
        *nodes(2),
    ]


def nodes(count: int) -> list[StackResource]:
    """The commands that init (the first) or join each node, as the Host component marks them."""
    return [
        StackResource(
            "command:remote:Command",
            "host-swarm" if index == 0 else f"host-join-{index + 1}",
            {"create": f"{NODE_MARKER}jobsearch-prod-{index + 1}\nset -eu\n"},
        )
        for index in range(count)
    ]


SECRET_ENVS = ["envs"]


# --- each check, passing and failing --------------------------------------------


def test_images_by_digest() -> None:
    assert images_by_digest(CONTAINER, container(), []) == []
    assert (
        images_by_digest(CONTAINER, container(image=f"registry.example.com/a/b@{DIGEST}"), []) == []
    )
    assert images_by_digest(REMOTE_IMAGE, {"name": f"caddy:2@{DIGEST}"}, []) == []
    assert images_by_digest(CONTAINER, container(image="caddy:2"), []) == [
        "container 'jobsearch-prod-api-0a0a0a0a1234-1' runs 'caddy:2', "
        "not an image pinned by digest"
    ]
    assert images_by_digest(REMOTE_IMAGE, {"name": "caddy:latest"}, [])
    assert images_by_digest(REMOTE_IMAGE, {"name": "caddy@sha256:short"}, [])


def test_cors_without_wildcard() -> None:
    assert cors_without_wildcard(CONTAINER, container(), []) == []
    assert cors_without_wildcard(CONTAINER, container(envs=["APP_ENV=production"]), []) == []
    assert cors_without_wildcard(CONTAINER, container(envs=["CORS_ORIGINS=*"]), [])
    wildcard_subdomain = container(
        envs=["CORS_ORIGINS=https://a.example.com,https://*.example.com"]
    )
    assert cors_without_wildcard(CONTAINER, wildcard_subdomain, [])


@pytest.mark.parametrize("user", ["", "0", "root", "0:0", "root:root"])
def test_root_users_are_refused(user: str) -> None:
    assert non_root(CONTAINER, container(user=user), []) != []


def test_non_root() -> None:
    assert non_root(CONTAINER, container(), []) == []
    assert non_root(CONTAINER, container(user="999:999"), []) == []


def test_read_only() -> None:
    assert read_only(CONTAINER, container(), []) == []
    assert read_only(CONTAINER, container(readOnly=False), [])
    without = container()
    del without["readOnly"]
    assert read_only(CONTAINER, without, [])


def test_health_checked() -> None:
    assert health_checked(CONTAINER, container(), []) == []
    assert health_checked(CONTAINER, container(healthcheck={"tests": ["NONE"]}), [])
    assert health_checked(CONTAINER, container(healthcheck=None), [])


@pytest.mark.parametrize(
    ("policy", "ok"),
    [
        ("unless-stopped", True),
        ("always", True),
        ("on-failure", True),
        ("no", False),
        (None, False),
    ],
)
def test_restarts(policy: str | None, ok: bool) -> None:
    assert (restarts(CONTAINER, container(restart=policy), []) == []) is ok


def test_rotates_logs() -> None:
    assert rotates_logs(CONTAINER, container(), []) == []
    assert rotates_logs(CONTAINER, container(logDriver="local"), []) == []
    assert rotates_logs(CONTAINER, container(logOpts={"max-size": "10m"}), [])
    assert rotates_logs(CONTAINER, container(logDriver="syslog"), [])
    assert rotates_logs(CONTAINER, container(logOpts=None), [])


def test_secret_settings_must_be_secret_outputs() -> None:
    assert secret_settings_are_secrets(CONTAINER, container(), SECRET_ENVS) == []
    assert secret_settings_are_secrets(CONTAINER, container(), []) == [
        "container 'jobsearch-prod-api-0a0a0a0a1234-1' has DATABASE_URL in envs, which is not a "
        "secret output"
    ]
    for name in (
        "RAPID_API_KEY",
        "THEIRSTACK_API_KEY",
        "SENTRY_DSN",
        "SOME_TOKEN",
        "DB_PASSWORD",
        "A_SECRET",
    ):
        assert secret_settings_are_secrets(CONTAINER, container(envs=[f"{name}=x"]), []), name
    # Nothing credential-like: nothing to hide.
    assert secret_settings_are_secrets(CONTAINER, proxy(), []) == []


def test_secret_settings_of_other_resources() -> None:
    token = {"key": "API_TOKEN", "value": "x", "sensitive": False}
    assert secret_settings_are_secrets(VERCEL_VARIABLE, token, [])
    assert secret_settings_are_secrets(VERCEL_VARIABLE, {**token, "sensitive": True}, []) == []
    assert (
        secret_settings_are_secrets(VERCEL_VARIABLE, {"key": "BACKEND_URL", "sensitive": False}, [])
        == []
    )
    dynamic = "pulumi-python:dynamic/jobsearch:Migrations"
    props = {"database_url": "x", "app_password": "y", "migrations": {}, "__provider": "z"}
    assert secret_settings_are_secrets(dynamic, props, ["database_url", "app_password"]) == []
    assert secret_settings_are_secrets(dynamic, props, ["database_url"]) == [
        f"app_password of {dynamic} are not secret outputs"
    ]
    command = {"environment": {"DOCKER_HOST": "unix:///x", "REGISTRY_TOKEN": "t"}}
    assert secret_settings_are_secrets("command:local:Command", command, [])
    assert secret_settings_are_secrets("command:local:Command", command, ["environment"]) == []


def test_at_least_two_replicas() -> None:
    assert at_least_two_replicas(good_stack()) == []
    one = [r for r in good_stack() if r.name != "service-api-2"]
    assert at_least_two_replicas(one) == ["the stack runs 1 service replica(s); run at least 2"]


def test_at_least_two_nodes() -> None:
    assert at_least_two_nodes(good_stack()) == []
    assert at_least_two_nodes([*good_stack(), *nodes(3)]) == [], "the same nodes, counted once"
    for few in ([], nodes(1)):
        stack = [r for r in good_stack() if r.resource_type != "command:remote:Command"] + few
        assert at_least_two_nodes(stack) == [
            "the stack runs on 1 node; run at least 2, so that losing one machine keeps the "
            "service up (pulumi config set --type int jobsearch:nodes 3)"
        ]


def test_https_on() -> None:
    assert https_on(good_stack()) == []
    plain = [
        StackResource(r.resource_type, r.name, proxy(ports=[{"internal": 8080, "external": 80}]))
        if r.name == "service-proxy"
        else r
        for r in good_stack()
    ]
    assert https_on(plain) == ["no proxy publishes its HTTPS port: set a domain"]
    off = [
        StackResource(r.resource_type, r.name, {"stdin": "{\n\tauto_https off\n}\n"})
        if r.name == "service-proxy-config"
        else r
        for r in good_stack()
    ]
    assert https_on(off) == ["service-proxy-config installs a Caddyfile with automatic HTTPS off"]
    no_dns = [r for r in good_stack() if r.resource_type != DNS_RECORD]
    assert https_on(no_dns) == ["no DNS record points the domain at the host"]


def test_checks_ignore_resources_they_are_not_about() -> None:
    bucket = {"name": "anything", "user": "root", "readOnly": False}
    for guardrail in RESOURCE_GUARDRAILS:
        assert guardrail.check("hcloud:index/server:Server", bucket, []) == [], guardrail.name


# --- the pack, as the engine runs it ----------------------------------------------


@pytest.fixture(scope="module")
def analyzer() -> Iterator[Analyzer]:
    with running_pack() as running:
        yield running


def test_the_pack_declares_every_guardrail_as_mandatory(analyzer: Analyzer) -> None:
    info = analyzer.info()
    assert info.name == "jobsearch-guardrails"
    declared = {policy.name: policy.enforcementLevel for policy in info.policies}
    expected = {g.name for g in RESOURCE_GUARDRAILS} | {g.name for g in STACK_GUARDRAILS}
    assert set(declared) == expected
    assert set(declared.values()) == {1}  # MANDATORY


def test_the_pack_passes_a_good_replica(analyzer: Analyzer) -> None:
    assert analyzer.analyze(CONTAINER, container(), SECRET_ENVS) == []


@pytest.mark.parametrize(
    ("policy", "change"),
    [
        ("images-by-digest", {"image": "jobsearch-api:latest"}),
        ("cors-no-wildcard", {"envs": ["CORS_ORIGINS=*"]}),
        ("containers-non-root", {"user": "0"}),
        ("containers-read-only", {"readOnly": False}),
        ("containers-health-check", {"healthcheck": {"tests": ["NONE"]}}),
        ("containers-restart-policy", {"restart": "no"}),
        ("containers-log-rotation", {"logOpts": {}}),
        ("secret-settings-are-secrets", {"envs": ["RAPID_API_KEY=x"], "__secret_outputs": []}),
    ],
)
def test_the_pack_blocks_each_violation(
    analyzer: Analyzer, policy: str, change: dict[str, Any]
) -> None:
    changed = copy.deepcopy(change)
    secret_outputs = changed.pop("__secret_outputs", SECRET_ENVS)
    diagnostics = analyzer.analyze(CONTAINER, container(**changed), secret_outputs)
    assert [d.policy for d in diagnostics] == [policy]
    assert diagnostics[0].mandatory


def test_the_pack_checks_the_whole_stack(analyzer: Analyzer) -> None:
    def as_request(resources: list[StackResource]) -> list[tuple[str, str, dict[str, Any]]]:
        return [(r.resource_type, r.name, dict(r.props)) for r in resources]

    assert analyzer.analyze_stack(as_request(good_stack())) == []
    lonely = [
        r for r in good_stack() if r.name not in ("service-api-2", "domain-record", "host-join-2")
    ]
    diagnostics = analyzer.analyze_stack(as_request(lonely))
    assert sorted(d.policy for d in diagnostics) == [
        "at-least-two-nodes",
        "at-least-two-replicas",
        "https-on",
    ]
    assert all(d.mandatory for d in diagnostics)


# --- Swarm services, and the hardening checks of review L9 --------------------------

SERVICE = "docker:index/service:Service"


def service(**task_changes: Any) -> dict[str, Any]:
    """A replica service as pulumi-docker's Service declares it (Pulumi's property names).

    Keyword arguments replace keys of taskSpec.containerSpec, or of taskSpec when
    prefixed with `task_` (task_resources=...).
    """
    spec: dict[str, Any] = {
        "image": f"registry.example.com/acme/api:1@{DIGEST}",
        "user": "10001:10001",
        "readOnly": True,
        "capDrops": ["ALL"],
        "healthcheck": {"tests": ["CMD", "python", "-m", "jobsearch.healthcheck"]},
        "env": {"APP_ENV": "production", "CORS_ORIGINS": "https://app.example.com"},
    }
    task: dict[str, Any] = {
        "containerSpec": spec,
        "resources": {"limits": {"memoryBytes": 512 * 1024 * 1024, "nanoCpus": 1_000_000_000}},
        "restartPolicy": {"condition": "any"},
        "logDriver": {"name": "json-file", "options": {"max-size": "10m", "max-file": "5"}},
    }
    for key, value in task_changes.items():
        if key.startswith("task_"):
            task[to_camel(key.removeprefix("task_"))] = value
        else:
            spec[key] = value
    return {
        "name": "jobsearch-prod-api",
        "labels": [{"label": "org.jobsearch.role", "value": "api"}],
        "taskSpec": task,
        "mode": {"replicated": {"replicas": 2}},
        "endpointSpec": {"ports": []},
    }


def to_camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(word.title() for word in rest)


def check(name: str) -> Any:
    return next(g.check for g in RESOURCE_GUARDRAILS if g.name == name)


def test_the_hardening_checks_exist() -> None:
    names = {g.name for g in RESOURCE_GUARDRAILS}
    assert {"containers-drop-capabilities", "containers-resource-limits"} <= names


@pytest.mark.parametrize(
    ("props", "problem"),
    [
        (container(capabilities=None), "keeps Linux capabilities"),
        (container(capabilities={"drops": ["NET_RAW"]}), "keeps Linux capabilities"),
        (container(memory=0), "no memory limit"),
        (container(memory=None), "no memory limit"),
        (container(cpus=None), "no CPU limit"),
        (container(cpus="0"), "no CPU limit"),
    ],
)
def test_a_container_without_cap_drop_all_or_limits_is_refused(
    props: dict[str, Any], problem: str
) -> None:
    found = [
        message
        for name in ("containers-drop-capabilities", "containers-resource-limits")
        for message in check(name)(CONTAINER, props, SECRET_ENVS)
    ]
    assert len(found) == 1, found
    assert problem in found[0], found
    assert found[0].startswith("container 'jobsearch-prod-api-0a0a0a0a1234-1' ")


def test_a_hardened_container_and_service_pass_every_check() -> None:
    for guardrail in RESOURCE_GUARDRAILS:
        assert guardrail.check(CONTAINER, container(), SECRET_ENVS) == [], guardrail.name
        assert guardrail.check(SERVICE, service(), ["taskSpec"]) == [], guardrail.name
    assert check("containers-drop-capabilities")(CONTAINER, container(
        capabilities={"drops": ["all"]}), []) == []  # fmt: skip


@pytest.mark.parametrize(
    ("guardrail", "changes", "problem"),
    [
        ("containers-drop-capabilities", {"capDrops": []}, "keeps Linux capabilities"),
        ("containers-drop-capabilities", {"capDrops": None}, "keeps Linux capabilities"),
        ("containers-resource-limits",
         {"task_resources": {"limits": {"memoryBytes": 0, "nanoCpus": 1}}}, "no memory limit"),
        ("containers-resource-limits",
         {"task_resources": {"limits": {"memoryBytes": 536870912}}}, "no CPU limit"),
        ("containers-resource-limits",
         {"task_resources": {"limits": {"nanoCpus": 1_000_000_000}}}, "no memory limit"),
        ("containers-non-root", {"user": "0:0"}, "runs as root"),
        ("containers-non-root", {"user": None}, "runs as root"),
        ("containers-read-only", {"readOnly": False}, "writable root filesystem"),
        ("images-by-digest", {"image": "registry.example.com/acme/api:1"}, "not an image pinned"),
        ("containers-health-check", {"healthcheck": {"tests": ["NONE"]}}, "no health check"),
        ("containers-restart-policy", {"task_restart_policy": {"condition": "none"}},
         "restart policy 'none'"),
        ("containers-log-rotation", {"task_log_driver": {"name": "json-file"}}, "logs with"),
        ("cors-no-wildcard", {"env": {"CORS_ORIGINS": "*"}}, "allows CORS"),
    ],
)  # fmt: skip
def test_a_swarm_service_is_checked_like_a_container(
    guardrail: str, changes: dict[str, Any], problem: str
) -> None:
    found = check(guardrail)(SERVICE, service(**changes), ["taskSpec"])

    assert len(found) == 1, found
    assert problem in found[0], found
    assert found[0].startswith("service 'jobsearch-prod-api' ")


def test_a_service_without_resources_has_neither_limit() -> None:
    assert check("containers-resource-limits")(SERVICE, service(task_resources={}), []) == [
        "service 'jobsearch-prod-api' has no memory limit; set one",
        "service 'jobsearch-prod-api' has no CPU limit; set one",
    ]


def test_a_service_with_a_credential_in_env_must_keep_its_task_spec_secret() -> None:
    props = service(env={"DATABASE_URL": "postgresql://x"})
    assert secret_settings_are_secrets(SERVICE, props, ["taskSpec"]) == []
    assert secret_settings_are_secrets(SERVICE, props, [])


def test_stack_checks_count_service_replicas_and_published_ports() -> None:
    proxy_service = service()
    proxy_service["labels"] = [{"label": "org.jobsearch.role", "value": "proxy"}]
    proxy_service["endpointSpec"] = {
        "ports": [{"targetPort": PROXY_HTTPS_PORT, "publishedPort": 443}]
    }
    resources = [
        StackResource(SERVICE, "service-api", service()),
        StackResource(SERVICE, "service-proxy", proxy_service),
        StackResource(DNS_RECORD, "domain-record", {"name": "api.example.com", "type": "A"}),
    ]
    assert at_least_two_replicas(resources) == []
    assert https_on(resources) == []
    single = service()
    single["mode"] = {"replicated": {"replicas": 1}}
    assert at_least_two_replicas([StackResource(SERVICE, "service-api", single)]) == [
        "the stack runs 1 service replica(s); run at least 2"
    ]


@pytest.mark.parametrize(
    ("policy", "change"),
    [
        ("containers-drop-capabilities", {"capabilities": {"drops": []}}),
        ("containers-resource-limits", {"memory": 0}),
    ],
)
def test_the_pack_blocks_a_container_without_hardening(
    analyzer: Analyzer, policy: str, change: dict[str, Any]
) -> None:
    diagnostics = analyzer.analyze(CONTAINER, container(**change), SECRET_ENVS)
    assert [d.policy for d in diagnostics] == [policy]
    assert diagnostics[0].mandatory


def test_the_pack_checks_a_swarm_service(analyzer: Analyzer) -> None:
    assert analyzer.analyze(SERVICE, service(), ["taskSpec"]) == []
    diagnostics = analyzer.analyze(SERVICE, service(capDrops=[], user="0"), ["taskSpec"])
    assert sorted(d.policy for d in diagnostics) == [
        "containers-drop-capabilities",
        "containers-non-root",
    ]
    assert policies.SERVICE == SERVICE


# --- stand-ins never reach a stack (issue 14) ------------------------------------------


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"SAMPLE_SOURCES": "jsearch"}, "sets SAMPLE_SOURCES='jsearch'"),
        ({"SAMPLE_SOURCES": ""}, "sets SAMPLE_SOURCES=''"),
        ({"JSEARCH_BASE_URL": "http://standins:9000"}, "sets JSEARCH_BASE_URL="),
        ({"THEIRSTACK_BASE_URL": "https://api.theirstack.com.evil.test"}, "THEIRSTACK_BASE_URL"),
        ({"OTHER_BASE_URL": "https://example.com"}, "the real API: none"),
    ],
)
def test_a_service_pointed_at_stand_ins_is_refused(env: dict[str, str], problem: str) -> None:
    props = service(env={"APP_ENV": "production", **env})

    found = check("no-stand-ins")(SERVICE, props, ["taskSpec"])

    assert len(found) == 1, found
    assert problem in found[0]
    assert found[0].startswith("service 'jobsearch-prod-api' ")
    assert "stand-ins are for local and test runs only" in found[0]


def test_the_real_apis_default_urls_pass() -> None:
    # The service's own defaults (jobsearch.settings), with or without the trailing slash.
    real = {
        "JSEARCH_BASE_URL": "https://jsearch.p.rapidapi.com/",
        "THEIRSTACK_BASE_URL": "https://api.theirstack.com",
    }
    assert check("no-stand-ins")(SERVICE, service(env=real), ["taskSpec"]) == []
    assert check("no-stand-ins")(SERVICE, service(), ["taskSpec"]) == []


def test_the_pack_refuses_stand_ins_as_mandatory(analyzer: Analyzer) -> None:
    diagnostics = analyzer.analyze(
        CONTAINER, container(envs=["SAMPLE_SOURCES=jsearch,theirstack"]), SECRET_ENVS
    )
    assert [d.policy for d in diagnostics] == ["no-stand-ins"]
    assert diagnostics[0].mandatory
