"""Stack keys for the service's cost and access controls: the daily budgets of paid calls
(jsearchDailyBudget, theirstackDailyBudget) and the frontend keys (frontendApiKeys)."""

from __future__ import annotations

import pytest

from tests.infra.pulumi.graph import Graph, plain_strings, run_program
from tests.infra.pulumi.stack_config import StackInput, committed_stack
from tests.infra.pulumi.test_config import load_run, problems
from tests.infra.pulumi.test_program import SECRET, container, env, service

NEW_KEY = "fake-frontend-key-new-5a5a5a5a"
OLD_KEY = "fake-frontend-key-old-a5a5a5a5"


def test_budgets_are_unlimited_unless_set() -> None:
    settings = load_run(committed_stack("staging")).service_settings()
    assert "JSEARCH_DAILY_BUDGET" not in settings
    assert "THEIRSTACK_DAILY_BUDGET" not in settings


def test_a_bad_budget_is_refused_by_the_services_rules() -> None:
    message = problems(committed_stack("staging").with_values(jsearchDailyBudget="-5"))
    assert "jobsearch:jsearchDailyBudget" in message
    message = problems(committed_stack("staging").with_values(theirstackDailyBudget="lots"))
    assert "jobsearch:theirstackDailyBudget" in message


def _budgeted_prod() -> StackInput:
    """prod with budgets, and two frontend keys while rotating (the new one first)."""
    run = committed_stack("prod").with_values(jsearchDailyBudget="500", theirstackDailyBudget="0")
    run.secrets["frontendApiKeys"] = f"{NEW_KEY},{OLD_KEY}"
    return run


@pytest.fixture(scope="module")
def budgeted_prod() -> Graph:
    graph = run_program(_budgeted_prod())
    assert graph.error is None, graph.error
    return graph


def test_budgets_reach_the_api_replicas_as_settings(budgeted_prod: Graph) -> None:
    variables = env(service(budgeted_prod, "api"))
    assert variables["JSEARCH_DAILY_BUDGET"] == "500"
    assert variables["THEIRSTACK_DAILY_BUDGET"] == "0"


def test_the_budget_alert_is_a_checkly_check_on_ready(budgeted_prod: Graph) -> None:
    check = budgeted_prod.named("monitoring-JobSearchUpstreamBudgetExhausted")
    request = check["request"]
    assert request["url"].endswith("/ready")
    [assertion] = request["assertions"]
    assert (assertion["property"], assertion["comparison"], assertion["target"]) == (
        "$.checks.budget.status",
        "NOT_EQUALS",
        "exhausted",
    )
    assert "runbooks/JobSearchUpstreamBudgetExhausted.md" in check["description"]
    assert "severity:warning" in check["tags"]


def test_frontend_keys_are_a_docker_secret_of_the_api(budgeted_prod: Graph) -> None:
    logical = {
        {i["label"]: i["value"] for i in each["labels"]}["org.jobsearch.name"]
        for each in budgeted_prod.of_type(SECRET)
    }
    assert "FRONTEND_API_KEYS" in logical
    api = service(budgeted_prod, "api")
    mounts = {m["fileName"] for m in container(api)["secrets"]}
    assert "/run/secrets/FRONTEND_API_KEYS" in mounts
    assert "FRONTEND_API_KEYS" not in env(api)


def test_the_frontend_link_gives_vercel_the_first_key_as_a_sensitive_variable(
    budgeted_prod: Graph,
) -> None:
    variable = budgeted_prod.named("frontend-backend-api-key")
    assert variable["key"] == "BACKEND_API_KEY"
    assert variable["value"] == NEW_KEY
    assert variable.secret("value")
    assert variable["sensitive"] is True
    assert variable["targets"] == ["production"]
    for resource in budgeted_prod.resources:
        for path, text in plain_strings(resource.inputs):
            assert NEW_KEY not in text, f"{resource.name}{path} holds a frontend key"
            assert OLD_KEY not in text, f"{resource.name}{path} holds a frontend key"


def test_without_frontend_keys_vercel_gets_no_key(prod: Graph) -> None:
    assert not [r for r in prod.resources if r.name == "frontend-backend-api-key"]
    assert prod.named("frontend-backend-url")


def test_a_bad_frontend_key_is_named_and_not_echoed() -> None:
    run = committed_stack("prod")
    run.secrets["frontendApiKeys"] = "short-secret9"
    message = problems(run)
    assert "jobsearch:frontendApiKeys each key must be at least 16 characters" in message
    assert "short-secret9" not in message


def test_frontend_keys_stored_in_plain_text_are_refused() -> None:
    message = problems(committed_stack("prod").with_values(frontendApiKeys=NEW_KEY))
    assert "jobsearch:frontendApiKeys is stored in plain text" in message
    assert NEW_KEY not in message


def test_a_new_frontend_key_changes_the_secrets_fingerprint() -> None:
    run = committed_stack("prod")
    before = load_run(run).secrets_fingerprint()
    run.secrets["frontendApiKeys"] = NEW_KEY
    assert load_run(run).secrets_fingerprint() != before
