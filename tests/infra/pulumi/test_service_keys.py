"""Stack keys for the service's cost and access controls: the daily budgets of paid calls
(jsearchDailyBudget, theirstackDailyBudget) and the frontend keys (frontendApiKeys)."""

from __future__ import annotations

import pytest

from tests.infra.pulumi.graph import Graph, run_program
from tests.infra.pulumi.stack_config import StackInput, committed_stack
from tests.infra.pulumi.test_config import load_run, problems
from tests.infra.pulumi.test_program import env, service


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
    return committed_stack("prod").with_values(jsearchDailyBudget="500", theirstackDailyBudget="0")


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
