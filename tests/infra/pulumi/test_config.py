"""Stack configuration: Pulumi.yaml is what infra/config/model.py declares, and every bad value is
refused with one message that names the key and the command that fixes it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic.alias_generators import to_camel

from infra.config.database import database_url_problem
from infra.config.images import image_generation, registry_host
from infra.config.keys import Key
from infra.config.load import load
from infra.config.model import KEYS, StackConfig
from infra.config.problems import ConfigError
from infra.config.standins import refuse_stand_in_keys, stand_in_setting_names
from infra.topology import Images
from jobsearch.settings import Settings
from tests.infra.pulumi.stack_config import (
    DOCS,
    FAKE_SECRETS,
    PROJECT,
    MissingConfiguration,
    StackInput,
    committed_stack,
    committed_values,
    dev_stack,
    project_schema,
    resolve,
)


class DictSource:
    """The config as the program reads it, from what the CLI would pass."""

    def __init__(self, run: StackInput) -> None:
        config, secret_keys = resolve(run)
        self.values = {key.partition(":")[2]: value for key, value in config.items()}
        self.secret_keys = {key.partition(":")[2] for key in secret_keys}

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def is_secret(self, key: str) -> bool:
        return key in self.secret_keys


def load_run(run: StackInput) -> StackConfig:
    return load(run.stack, DictSource(run))


def problems(run: StackInput) -> str:
    with pytest.raises(ConfigError) as caught:
        load_run(run)
    return str(caught.value)


def test_pulumi_yaml_declares_exactly_the_keys_the_program_reads() -> None:
    schema = project_schema()
    assert list(schema) == [key.name for key in KEYS]
    for key in KEYS:
        declared = schema[key.name]
        assert declared["type"] == key.kind, key.name
        assert declared["description"] == key.description, key.name
        if key.kind == "array":
            assert declared["items"] == {"type": "string"}
        if key.default is None:
            assert "default" not in declared, f"{key.name} is required by every stack"
        else:
            default = list(key.default) if isinstance(key.default, tuple) else key.default
            assert declared["default"] == default, key.name
        # A default cannot be encrypted, so only required secrets are declared secret.
        assert declared.get("secret", False) == (key.secret and key.default is None), key.name


def test_the_typed_object_has_one_field_per_key() -> None:
    fields = {to_camel(name) for name in StackConfig.model_fields} - {"stack"}
    assert fields == {key.name for key in KEYS}


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_committed_stack_files_use_declared_keys_with_their_types(stack: str) -> None:
    values = committed_values(stack)
    assert values, f"Pulumi.{stack}.yaml has no config"
    assert set(values) <= set(project_schema())
    assert not set(values) & set(FAKE_SECRETS), "no secret is committed"
    resolve(committed_stack(stack))  # the CLI's own checks (types, required keys)


def test_staging_config_is_typed() -> None:
    config = load_run(committed_stack("staging"))
    assert config.environment == "staging"
    assert config.replicas == 2
    assert config.checkly_locations == ("eu-central-1", "us-east-1")
    assert config.host_mode == "hcloud"
    assert config.database_url.get_secret_value() == FAKE_SECRETS["databaseUrl"]
    assert config.service_settings()["CORS_ORIGINS"] == "https://staging.app.example.com"
    assert not config.promotes


def test_prod_config_promotes_from_staging() -> None:
    config = load_run(committed_stack("prod"))
    assert config.promote_from == "staging"
    assert config.replicas >= 2
    assert config.frontend_link


def test_the_documented_dev_stack_is_valid() -> None:
    config = load_run(dev_stack())
    assert config.environment == "dev"
    assert config.host_mode == "local"
    assert config.app_env == "development"


def test_no_secret_value_in_the_typed_object_or_its_repr() -> None:
    text = repr(load_run(committed_stack("prod")))
    for value in FAKE_SECRETS.values():
        assert value not in text


def test_a_missing_key_names_itself_and_the_command_that_sets_it() -> None:
    message = problems(committed_stack("staging").without("imageRef"))
    assert message.startswith('stack "staging" is not configured correctly:')
    assert "jobsearch:imageRef is not set" in message
    assert (
        "Fix: pulumi config set jobsearch:imageRef "
        "'<registry/owner/jobsearch-api@sha256:64hex>' -s staging" in message
    )


def test_a_missing_secret_gets_a_secret_command() -> None:
    message = problems(committed_stack("prod").without("checklyApiKey"))
    assert "jobsearch:checklyApiKey is not set" in message
    assert "Fix: pulumi config set --secret jobsearch:checklyApiKey <key> -s prod" in message


def test_the_cli_itself_refuses_a_stack_without_a_required_key() -> None:
    # databaseUrl has no default in Pulumi.yaml: the CLI stops before the program runs.
    with pytest.raises(MissingConfiguration, match="databaseUrl"):
        resolve(committed_stack("staging").without("databaseUrl"))


def test_a_wrong_type_is_named() -> None:
    run = committed_stack("staging")
    source = DictSource(run)
    source.values["replicas"] = "two"
    with pytest.raises(ConfigError) as caught:
        load("staging", source)
    assert "jobsearch:replicas must be a whole number (got 'two')" in str(caught.value)
    assert "Fix: pulumi config set --type int jobsearch:replicas 2 -s staging" in str(caught.value)


def test_a_list_key_is_fixed_with_a_path() -> None:
    message = problems(committed_stack("prod").with_values(checklyLocations=["eu-central-1"]))
    assert "jobsearch:checklyLocations must list two or more locations" in message
    assert (
        "Fix: pulumi config set --path 'jobsearch:checklyLocations[0]' eu-central-1 -s prod"
        in message
    )


def test_the_transaction_pooler_is_refused_without_echoing_the_password() -> None:
    run = committed_stack("staging")
    pooled = "postgresql://postgres.prjref:S3cretPw-6543@aws-0-eu.pooler.supabase.com:6543/postgres"
    run.secrets["databaseUrl"] = pooled
    message = problems(run)
    assert "jobsearch:databaseUrl points at the transaction pooler (port 6543)" in message
    assert "pulumi config set --secret jobsearch:databaseUrl" in message
    assert "S3cretPw-6543" not in message


def test_a_secret_stored_in_plain_text_is_refused() -> None:
    run = committed_stack("prod")
    value = run.secrets.pop("rapidApiKey")
    run.values["rapidApiKey"] = value  # set without --secret
    message = problems(run)
    assert "jobsearch:rapidApiKey is stored in plain text; store it encrypted" in message
    assert "--secret jobsearch:rapidApiKey" in message
    assert value not in message


def test_every_problem_is_in_the_one_message() -> None:
    run = committed_stack("prod").with_values(replicas=1).without("cloudflareZoneId", "promoteFrom")
    message = problems(run)
    assert "jobsearch:replicas must be at least 2 in prod (got 1)" in message
    assert "jobsearch:cloudflareZoneId is not set" in message
    assert "jobsearch:promoteFrom is not set: prod runs only what staging ran" in message
    # Not promoting, prod would need its own images: those are named too.
    assert "jobsearch:imageRef is not set" in message
    assert message.count("\n  - ") == message.count("\n    Fix: ") == 6


def test_staging_and_prod_take_images_only_by_digest() -> None:
    message = problems(committed_stack("staging").with_values(proxyImage="caddy:2"))
    assert (
        "jobsearch:proxyImage must be pinned by digest, name@sha256:<64 hex> (got 'caddy:2')"
        in message
    )


def test_the_machines_own_engine_is_for_dev_only() -> None:
    message = problems(committed_stack("staging").with_values(hostMode="local"))
    assert "jobsearch:hostMode local is for dev stacks only, not staging" in message


def test_an_unknown_stack_name_asks_for_the_environment() -> None:
    run = dev_stack().without("environment")
    run.stack = "qa"
    message = problems(run)
    assert "jobsearch:environment is not set and the stack name 'qa' is not one of" in message
    assert "Fix: pulumi config set jobsearch:environment prod -s qa" in message


def test_the_service_refuses_a_wildcard_origin_in_production() -> None:
    # The service's own settings validation, run before anything is deployed.
    message = problems(committed_stack("prod").with_values(frontendOrigins=["*"]))
    assert "jobsearch:frontendOrigins * is refused when APP_ENV=production" in message


def test_a_bad_rate_limit_is_refused_by_the_services_rules() -> None:
    message = problems(committed_stack("staging").with_values(rateLimit="lots"))
    assert "jobsearch:rateLimit must look like 30/minute or 5/second" in message


def test_the_deploying_machines_environment_and_dot_env_do_not_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stack settings are checked as the containers will get them, not as this shell has them."""
    # Settings the stack does not set, each invalid: read from here, they would fail the check.
    (tmp_path / ".env").write_text("WORKERS=99\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PORT", "not-a-port")
    config = load_run(committed_stack("prod"))
    assert config.environment == "prod"


def test_partial_sentry_alerting_names_the_missing_keys() -> None:
    message = problems(committed_stack("staging").with_values(sentryOrganization="acme"))
    for key in ("sentryProject", "sentryTeamId", "sentryAuthToken"):
        assert f"jobsearch:{key} is not set (the other Sentry alert keys are)" in message


def test_hcloud_needs_its_token_and_the_deploy_key() -> None:
    message = problems(committed_stack("staging").without("hcloudToken", "sshPublicKey"))
    assert "jobsearch:hcloudToken is not set (hostMode is hcloud)" in message
    assert "jobsearch:sshPublicKey is not set (hostMode is hcloud)" in message


def test_an_existing_host_needs_its_pinned_host_key() -> None:
    message = problems(
        committed_stack("prod").with_values(hostMode="existing", hostAddress="198.51.100.7")
    )
    assert "jobsearch:hostKey is not set: deploys check the server's identity" in message


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("postgresql://postgres:pw@db.x.supabase.co:5432/postgres", None),
        ("postgresql://postgres.ref:pw@aws-0-eu.pooler.supabase.com:5432/postgres", None),
        ("postgresql://postgres:pw@db.x.supabase.co:6543/postgres", "transaction pooler"),
        ("mysql://root:pw@db:3306/x", "not a postgresql://"),
        ("postgresql://db.x.supabase.co:5432/postgres", "must name the user and its password"),
        ("postgresql://jobsearch_app.ref:pw@pooler:5432/postgres", "not the service's own role"),
        ("postgresql://postgres:pw@db:notaport/x", "not a postgresql:// connection string"),
    ],
)
def test_database_url_problems(url: str, problem: str | None) -> None:
    found = database_url_problem(url)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found
        assert "pw" not in found.replace("password", "")


def test_image_generation_is_a_short_form_of_the_digest() -> None:
    digest = "0123456789ab" + "c" * 52
    assert image_generation(f"ghcr.test/x/y@sha256:{digest}") == "0123456789ab"
    assert image_generation(f"sha256:{digest}") == "0123456789ab"
    tagged = image_generation("jobsearch-api:dev")
    assert len(tagged) == 12
    assert tagged != image_generation("jobsearch-api:dev2")


def test_registry_host() -> None:
    assert (
        registry_host("registry.example.com/acme/api@sha256:" + "0" * 64) == "registry.example.com"
    )
    assert registry_host("localhost:5000/api:1") == "localhost:5000"
    assert registry_host("caddy:2") is None
    assert registry_host("acme/api:1") is None


def test_the_secrets_fingerprint_changes_with_any_secret_and_hides_them() -> None:
    base = load_run(committed_stack("prod"))
    rotated = committed_stack("prod")
    rotated.secrets["theirstackApiKey"] = "another-fake-token"
    changed = load_run(rotated)
    assert base.secrets_fingerprint() != changed.secrets_fingerprint()
    assert base.secrets_fingerprint() == load_run(committed_stack("prod")).secrets_fingerprint()
    for value in FAKE_SECRETS.values():
        assert value not in base.secrets_fingerprint()


def test_config_keys_all_live_in_the_project_namespace() -> None:
    assert all(key.full_name.startswith(f"{PROJECT}:") for key in KEYS)


def test_the_docs_list_every_secret_and_the_secrets_providers() -> None:
    text = DOCS.read_text()
    for key in KEYS:
        if key.secret:
            assert f"`{key.name}`" in text, f"docs/pulumi.md does not list the secret {key.name}"
    for provider in ("--secrets-provider passphrase", "awskms://", "gcpkms://", "azurekeyvault://"):
        assert provider in text
    assert "PULUMI_CONFIG_PASSPHRASE" in text


def test_the_docs_show_a_real_error_message() -> None:
    run = committed_stack("prod")
    run.secrets["databaseUrl"] = run.secrets["databaseUrl"].replace(":5432/", ":6543/")
    message = problems(run)
    shown = DOCS.read_text().split("```text\n", 1)[1].split("```", 1)[0]
    assert shown.strip() == message


def test_a_half_set_registry_login_names_the_missing_half() -> None:
    only_user = committed_stack("staging").with_values(registryUsername="deploy-bot")
    message = problems(only_user.without("registryPassword"))
    assert "jobsearch:registryPassword is not set" in message
    assert "pulumi config set --secret jobsearch:registryPassword" in message
    only_password = committed_stack("staging").with_values(registryUsername="")
    only_password.secrets["registryPassword"] = "fake-registry-token-beef"
    message = problems(only_password)
    assert "jobsearch:registryUsername is not set" in message
    assert "pulumi config set jobsearch:registryUsername" in message


# --- sshUser and hostAddress go into sshd_config, known_hosts and ssh URLs (review L10) ---


@pytest.mark.parametrize(
    "user", ["deploy\nAllowUsers root", "deploy root", "Deploy", "-oProxyCommand=x", "", "a" * 33]
)
def test_a_bad_ssh_user_is_refused_with_its_fix(user: str) -> None:
    message = problems(committed_stack("staging").with_values(sshUser=user))

    assert "jobsearch:sshUser must be a Unix user name" in message
    assert "Fix: pulumi config set jobsearch:sshUser deploy -s staging" in message
    assert "\nAllowUsers root" not in message  # shown quoted, never as a line of its own


@pytest.mark.parametrize("user", ["deploy", "ci_deploy", "deploy-2", "_svc"])
def test_a_plain_ssh_user_is_accepted(user: str) -> None:
    assert load_run(committed_stack("staging").with_values(sshUser=user)).ssh_user == user


@pytest.mark.parametrize(
    "address",
    [
        "198.51.100.7\n@cert-authority * ssh-ed25519 AAAA",
        "198.51.100.7 other.example.com",
        "host.example.com,*",
        "deploy@198.51.100.7",
        "-oProxyCommand=sh",
        "[198.51.100.7]:2222",
        "http://198.51.100.7",
    ],
)
def test_a_bad_host_address_is_refused_with_its_fix(address: str) -> None:
    run = committed_stack("prod").with_values(
        hostMode="existing", hostAddress=address, hostKey="ssh-ed25519 AAAAC3Nza"
    )

    message = problems(run)

    assert "jobsearch:hostAddress must be an IP address or a DNS name" in message
    assert "Fix: pulumi config set jobsearch:hostAddress <203.0.113.10> -s prod" in message


@pytest.mark.parametrize("address", ["198.51.100.7", "2001:db8::7", "host-1.example.com"])
def test_an_ip_address_or_a_dns_name_is_accepted(address: str) -> None:
    run = committed_stack("staging").with_values(
        hostMode="existing", hostAddress=address, hostKey="ssh-ed25519 AAAAC3Nza"
    )

    assert load_run(run).host_address == address


# --- nodes, servers and the smoke key (past one machine) ------------------------------

KEY_2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIServerTwo"
KEY_3 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIServerThree"


def existing(*servers: str, **values: object) -> StackInput:
    return committed_stack("prod").with_values(
        **{"hostMode": "existing", "servers": list(servers), "nodes": len(servers), **values}
    )


def test_nodes_default_to_one_and_prod_runs_three() -> None:
    assert load_run(committed_stack("staging")).nodes == 1
    config = load_run(committed_stack("prod"))
    assert config.nodes == 3
    assert config.topology_spec(Images(service="x")).nodes == 3


@pytest.mark.parametrize("nodes", [0, -1, 17, 100])
def test_a_node_count_out_of_range_names_the_key_and_its_fix(nodes: int) -> None:
    message = problems(committed_stack("staging").with_values(nodes=nodes))
    assert f"jobsearch:nodes must be between 1 and 16 (got {nodes})" in message
    assert "Fix: pulumi config set --type int jobsearch:nodes 3 -s staging" in message


def test_prod_needs_two_nodes_or_more() -> None:
    message = problems(committed_stack("prod").with_values(nodes=1))
    assert "jobsearch:nodes must be at least 2 in prod: one machine is lost whole (got 1)" in (
        message
    )
    assert "Fix: pulumi config set --type int jobsearch:nodes 3 -s prod" in message
    assert load_run(committed_stack("prod").with_values(nodes=2)).nodes == 2


def test_a_list_of_existing_servers_takes_the_place_of_one_address() -> None:
    config = load_run(
        existing(
            f"198.51.100.7 {KEY_2}", f"198.51.100.8 {KEY_3} worker", f"h.example.com {KEY_2} worker"
        )
    )
    servers = config.existing_servers()
    assert [(s.address, s.role) for s in servers] == [
        ("198.51.100.7", "manager"),
        ("198.51.100.8", "worker"),
        ("h.example.com", "worker"),
    ]
    assert servers[0].host_key == KEY_2
    # Three without roles: three managers (Raft quorum).
    three = existing(f"10.0.0.1 {KEY_2}", f"10.0.0.2 {KEY_3}", f"10.0.0.3 {KEY_2}")
    assert [s.role for s in load_run(three).existing_servers()] == ["manager"] * 3


def test_one_existing_server_is_still_host_address_and_host_key() -> None:
    run = committed_stack("staging").with_values(
        hostMode="existing", hostAddress="198.51.100.7", hostKey=KEY_2
    )
    [server] = load_run(run).existing_servers()
    assert (server.address, server.host_key, server.role) == ("198.51.100.7", KEY_2, "manager")
    message = problems(run.with_values(nodes=2))
    assert "jobsearch:servers is empty, but nodes is 2: list every server" in message
    assert (
        "Fix: pulumi config set --path 'jobsearch:servers[0]' "
        "'<203.0.113.10> ssh-ed25519 <base64> manager' -s staging" in message
    )


@pytest.mark.parametrize(
    ("servers", "values", "problem"),
    [
        ((f"198.51.100.7 {KEY_2}", "198.51.100.8"), {},
         "is not 'address hostKey [manager|worker]'"),
        ((f"198.51.100.7 {KEY_2}", f"198.51.100.8 {KEY_3} boss"), {}, "the role must be manager"),
        ((f"198.51.100.7 {KEY_2} worker", f"198.51.100.8 {KEY_3} manager"), {},
         "must list a manager first"),
        ((f"198.51.100.7 {KEY_2}", f"198.51.100.8 {KEY_3} manager"), {}, "lists 2 managers"),
        ((f"198.51.100.7 {KEY_2}", f"198.51.100.7 {KEY_3} worker"), {}, "lists a server twice"),
        ((f"user@198.51.100.7 {KEY_2}", f"198.51.100.8 {KEY_3} worker"), {},
         "'user@198.51.100.7' is not an IP address or a DNS name"),
        ((f"198.51.100.7 {KEY_2}", "198.51.100.8 ssh-ed25519 not-base64! worker"), {},
         "198.51.100.8: the host key is not one OpenSSH key"),
        ((f"198.51.100.7 {KEY_2}", f"198.51.100.8 {KEY_3} worker"), {"nodes": 3},
         "jobsearch:nodes is 3, but servers lists 2: they must agree"),
        ((f"198.51.100.7 {KEY_2}", f"198.51.100.8 {KEY_3} worker"), {"hostAddress": "x.example"},
         "jobsearch:hostAddress and hostKey must be empty when servers lists the servers"),
    ],
)  # fmt: skip
def test_a_bad_server_list_is_refused_with_its_fix(
    servers: tuple[str, ...], values: dict[str, object], problem: str
) -> None:
    message = problems(existing(*servers, **values))
    assert problem in message
    assert "Fix: pulumi config set" in message


def test_servers_are_for_existing_hosts_and_the_laptop_has_one_node() -> None:
    message = problems(committed_stack("staging").with_values(servers=[f"198.51.100.7 {KEY_2}"]))
    assert "jobsearch:servers is for hostMode existing, not hcloud" in message
    message = problems(dev_stack().with_values(nodes=2))
    assert "jobsearch:nodes must be 1 with hostMode local (got 2)" in message


def test_the_private_network_keeps_clear_of_the_overlay() -> None:
    message = problems(committed_stack("staging").with_values(nodes=2, subnetOctet=254))
    assert "jobsearch:subnetOctet must not be 254: 10.254.0.0/16 is the nodes' private network" in (
        message
    )
    assert load_run(committed_stack("staging").with_values(subnetOctet=254)).nodes == 1


def test_the_smoke_key_is_one_openssh_key() -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAISmoke smoke"
    config = load_run(committed_stack("staging").with_values(smokeSshPublicKey=key))
    assert config.smoke_ssh_public_key == key
    message = problems(committed_stack("staging").with_values(smokeSshPublicKey="not a key"))
    assert "jobsearch:smokeSshPublicKey must be one OpenSSH key line" in message
    assert "Fix: pulumi config set jobsearch:smokeSshPublicKey 'ssh-ed25519 <base64> smoke'" in (
        message
    )


def test_the_heartbeat_token_is_stable_secret_and_per_stack() -> None:
    staging = load_run(committed_stack("staging"))
    prod = load_run(committed_stack("prod"))
    assert staging.heartbeat_token().get_secret_value() == (
        load_run(committed_stack("staging")).heartbeat_token().get_secret_value()
    )
    assert staging.heartbeat_token() != prod.heartbeat_token()
    assert len(staging.heartbeat_token().get_secret_value()) == 32
    assert staging.heartbeat_token().get_secret_value() not in repr(staging.heartbeat_token())


# --- stand-ins never reach staging or prod (issue 14) ---------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("sampleSources", "jsearch,theirstack"),
        ("jsearchBaseUrl", "http://standins:9000"),
        ("theirstackBaseUrl", "https://api.theirstack.com"),
    ],
)
def test_a_stack_key_that_would_point_at_stand_ins_is_refused(key: str, value: str) -> None:
    message = problems(committed_stack("staging").with_values(**{key: value}))

    assert f"jobsearch:{key} points the service at local stand-ins: never on a stack" in message
    assert f"Fix: pulumi config rm jobsearch:{key} -s staging" in message


def test_a_retired_key_is_refused_with_what_replaced_it() -> None:
    message = problems(committed_stack("prod").with_values(stateDir="/srv/jobsearch"))

    assert "jobsearch:stateDir no longer used: Caddy's certificates live in the Docker" in message
    assert "Fix: pulumi config rm jobsearch:stateDir -s prod" in message


def test_the_settings_a_stack_hands_the_service_name_no_stand_in() -> None:
    handed = load_run(committed_stack("prod")).service_settings()
    assert not set(handed) & set(stand_in_setting_names())
    assert {"SAMPLE_SOURCES", "JSEARCH_BASE_URL", "THEIRSTACK_BASE_URL"} <= set(
        stand_in_setting_names()
    )
    # A key declared to set one is refused when the model is built.
    with pytest.raises(TypeError, match="jobsearch:sampleSources sets SAMPLE_SOURCES"):
        refuse_stand_in_keys([Key("sampleSources", "string", "", "", setting="SAMPLE_SOURCES")])


def test_a_key_that_sets_a_service_setting_takes_the_services_default() -> None:
    """One default per knob: the service's (service/jobsearch/settings.py), on every path."""
    by_setting = {key.setting: key for key in KEYS if key.setting is not None}
    for name in ("CACHE_TTL_MINUTES", "LOG_LEVEL", "RATE_LIMIT"):
        assert by_setting[name].default == Settings.model_fields[name.lower()].default, name
    # The committed stacks no longer pin it, so the service's default reaches them.
    assert "cacheTtlMinutes" not in committed_values("staging")
    assert "cacheTtlMinutes" not in committed_values("prod")
    settings = load_run(committed_stack("prod")).service_settings()
    assert settings["CACHE_TTL_MINUTES"] == str(Settings.model_fields["cache_ttl_minutes"].default)
