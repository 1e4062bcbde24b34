"""Each guardrail passing and failing, as a plain function and through the real
policy pack (its analyzer process, asked over gRPC as the Pulumi engine asks)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from infra.policy.policies import (
    CONTAINER,
    DNS_RECORD,
    REMOTE_IMAGE,
    RESOURCE_GUARDRAILS,
    STACK_GUARDRAILS,
    VERCEL_VARIABLE,
    StackResource,
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
from infra.topology import PROXY_HTTPS_PORT
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
    lonely = [r for r in good_stack() if r.name not in ("service-api-2", "domain-record")]
    diagnostics = analyzer.analyze_stack(as_request(lonely))
    assert sorted(d.policy for d in diagnostics) == ["at-least-two-replicas", "https-on"]
    assert all(d.mandatory for d in diagnostics)
