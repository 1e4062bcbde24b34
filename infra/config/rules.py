"""The checks that span keys: each rule takes the typed config and returns its problems."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError

from infra.config.hosts import (
    PRIVATE_NETWORK_OCTET,
    SSH_KEY,
    SSH_USER,
    is_host_address,
    parse_server,
)
from infra.config.images import configured_image_values, registry_host
from infra.config.model import KEYS, StackConfig
from infra.config.problems import Problem, problem
from infra.image_refs import digest_reference
from infra.promotion import PROMOTE_KEY
from jobsearch.settings import settings_from  # the service's one list of settings

Rule = Callable[[StackConfig], list[Problem]]


def _image_rules(config: StackConfig) -> list[Problem]:
    problems = []
    by_digest_only = config.environment != "dev"
    if config.environment == "prod" and not config.promotes:
        problems.append(problem(PROMOTE_KEY, "is not set: prod runs only what staging ran"))
    for name, value in configured_image_values(config).items():
        if not value:
            # A promoting stack takes all three from its source stack.
            if not config.promotes:
                problems.append(problem(name, "is not set"))
            continue
        if by_digest_only and digest_reference(value) is None:
            problems.append(
                problem(name, f"must be pinned by digest, name@sha256:<64 hex> (got {value!r})")
            )
    if bool(config.registry_username) != (config.registry_password is not None):
        missing = "registryUsername" if config.registry_password is not None else "registryPassword"
        problems.append(
            problem(missing, "is not set: registryUsername and registryPassword go together")
        )
    elif config.registry_username and config.image_ref and registry_host(config.image_ref) is None:
        problems.append(
            problem("registryUsername", "is set, but imageRef names no registry host to log in to")
        )
    return problems


def _host_rules(config: StackConfig) -> list[Problem]:
    problems = []
    if not SSH_USER.fullmatch(config.ssh_user):
        problems.append(
            problem(
                "sshUser",
                "must be a Unix user name: a lowercase letter or _, then up to 31 lowercase "
                f"letters, digits, _ or - (got {config.ssh_user!r})",
            )
        )
    if config.host_address and not is_host_address(config.host_address):
        problems.append(
            problem(
                "hostAddress",
                "must be an IP address or a DNS name, without user, port or brackets "
                f"(got {config.host_address!r})",
            )
        )
    if config.host_mode == "local" and config.environment != "dev":
        problems.append(
            problem("hostMode", f"local is for dev stacks only, not {config.environment}")
        )
    if config.host_mode == "existing":
        if config.servers:
            problems.extend(_servers_problems(config))
        else:
            if not config.host_address:
                problems.append(problem("hostAddress", "is not set (hostMode is existing)"))
            if not config.host_key:
                problems.append(
                    problem("hostKey", "is not set: deploys check the server's identity")
                )
            if config.nodes > 1:
                problems.append(
                    problem(
                        "servers",
                        f"is empty, but nodes is {config.nodes}: list every server "
                        "(hostAddress and hostKey name one)",
                    )
                )
    return problems


def _node_rules(config: StackConfig) -> list[Problem]:
    problems = []
    if config.host_mode != "existing" and config.servers:
        problems.append(problem("servers", f"is for hostMode existing, not {config.host_mode}"))
    if config.host_mode == "local" and config.nodes > 1:
        problems.append(problem("nodes", f"must be 1 with hostMode local (got {config.nodes})"))
    if (
        config.host_mode == "hcloud"
        and config.nodes > 1
        and config.subnet_octet == PRIVATE_NETWORK_OCTET
    ):
        problems.append(
            problem(
                "subnetOctet",
                f"must not be {PRIVATE_NETWORK_OCTET}: 10.{PRIVATE_NETWORK_OCTET}.0.0/16 is the "
                "nodes' private network",
            )
        )
    if config.host_mode == "hcloud":
        if config.hcloud_token is None:
            problems.append(problem("hcloudToken", "is not set (hostMode is hcloud)"))
        if not config.ssh_public_key:
            problems.append(problem("sshPublicKey", "is not set (hostMode is hcloud)"))
    return problems


def _servers_problems(config: StackConfig) -> list[Problem]:
    problems = []
    parsed = []
    for entry in config.servers:
        try:
            parsed.append(parse_server(entry))
        except ValueError as error:
            problems.append(problem("servers", str(error)))
            continue
        address = entry.split()[0]
        if not is_host_address(address):
            problems.append(problem("servers", f"{address!r} is not an IP address or a DNS name"))
        if not SSH_KEY.fullmatch(parsed[-1].host_key):
            problems.append(problem("servers", f"{address}: the host key is not one OpenSSH key"))
    if problems:
        return problems
    if config.host_address or config.host_key:
        problems.append(
            problem("hostAddress", "and hostKey must be empty when servers lists the servers")
        )
    if len(config.servers) != config.nodes:
        problems.append(
            problem(
                "nodes",
                f"is {config.nodes}, but servers lists {len(config.servers)}: they must agree",
            )
        )
    roles = [server.role for server in config.existing_servers()]
    if roles[0] != "manager":
        problems.append(problem("servers", "must list a manager first: it inits the swarm"))
    if roles.count("manager") % 2 == 0:
        problems.append(
            problem(
                "servers",
                f"lists {roles.count('manager')} managers: an odd number keeps a Raft quorum",
            )
        )
    addresses = [server.address for server in config.existing_servers()]
    if len(set(addresses)) != len(addresses):
        problems.append(problem("servers", "lists a server twice"))
    return problems


def _production_rules(config: StackConfig) -> list[Problem]:
    """What the production checklist asks of staging and prod (dev may skip it)."""
    if config.environment == "dev":
        return []
    problems = []
    if config.environment == "prod" and config.replicas < 2:
        problems.append(problem("replicas", f"must be at least 2 in prod (got {config.replicas})"))
    if config.environment == "prod" and config.nodes < 2:
        problems.append(
            problem(
                "nodes",
                f"must be at least 2 in prod: one machine is lost whole (got {config.nodes})",
            )
        )
    if not config.domain:
        problems.append(problem("domain", "is not set: staging and prod serve HTTPS only"))
    if config.domain and not config.cloudflare_zone_id:
        problems.append(problem("cloudflareZoneId", "is not set: the domain needs its DNS record"))
    if config.cloudflare_zone_id and config.cloudflare_api_token is None:
        problems.append(problem("cloudflareApiToken", "is not set (cloudflareZoneId is)"))
    if config.rapid_api_key is None and config.theirstack_api_key is None:
        problems.append(
            problem("rapidApiKey", "and theirstackApiKey are both empty: no search could succeed")
        )
    if not config.monitored:
        problems.append(problem("checklyAccountId", "is not set: staging and prod are monitored"))
    return problems


def _monitoring_rules(config: StackConfig) -> list[Problem]:
    if not config.monitored:
        return []
    problems = []
    if config.checkly_api_key is None:
        problems.append(problem("checklyApiKey", "is not set (checklyAccountId is)"))
    if not config.domain:
        problems.append(problem("domain", "is not set: the checks probe https://<domain>"))
    if len(set(config.checkly_locations)) < 2:
        problems.append(
            problem("checklyLocations", "must list two or more locations to probe from")
        )
    if not config.alert_emails and config.alert_webhook_url is None:
        problems.append(
            problem(
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
            problem(name, "is not set (the other Sentry alert keys are)")
            for name, present in sentry.items()
            if not present
        )
    return problems


def _frontend_rules(config: StackConfig) -> list[Problem]:
    if not config.frontend_link:
        return []
    problems = []
    if not config.vercel_project_id:
        problems.append(problem("vercelProjectId", "is not set (frontendLink is true)"))
    if config.vercel_api_token is None:
        problems.append(problem("vercelApiToken", "is not set (frontendLink is true)"))
    if not config.frontend_origins:
        problems.append(
            problem("frontendOrigins", "is empty: the frontend's origin must be allowed (CORS)")
        )
    if not config.domain:
        problems.append(problem("domain", "is not set: the frontend needs an https BACKEND_URL"))
    return problems


# Each service setting the stack's check passes, by the key that sets it.
_SETTING_KEYS = {"app_env": "environment"} | {
    key.setting.lower(): key.name for key in KEYS if key.setting is not None
}


def _service_setting_rules(config: StackConfig) -> list[Problem]:
    """The service validates its settings at startup; checking them here fails the deploy
    before any container changes instead of after."""
    values: dict[str, object] = {"app_env": config.app_env}
    values.update({name.lower(): value for name, value in config.service_settings().items()})
    for name, value in config.service_secrets().items():
        # A secret: its messages never echo it.
        values[name.lower()] = value.get_secret_value()
    try:
        # These values alone: not the deploying machine's environment or .env.
        settings_from(values)
    except ValidationError as error:
        problems = []
        for item in error.errors(include_input=False, include_url=False):
            field = str(item["loc"][0]) if item["loc"] else ""
            message = str(item["msg"]).removeprefix("Value error, ")
            problems.append(problem(_SETTING_KEYS[field], message))
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
