"""Pull-request code never gets near prod (review H1).

A pull request runs the branch's own code and its own copy of the workflow
files, so what it can reach is decided by the credentials GitHub hands it:
it previews staging only, with a token of a staging-scoped environment, and
nothing it runs can select the prod stack or the prod environment. Prod is
previewed after the merge, in the deploy job of the approval-gated `prod`
environment.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.infra.ops.fake_pulumi import install
from tests.workflows import rules
from tests.workflows.runner import checkout, run_job, search_path, stand_in

BY_NAME = {w.name: w for w in rules.load_all()}
CI, DELIVER, DEPLOY = BY_NAME["ci.yml"], BY_NAME["deliver.yml"], BY_NAME["deploy.yml"]
PREVIEW_ENVIRONMENT = "staging-preview"
STACK_FLAG = re.compile(r"(?:--stack|-s)[ =]+(\S+)")


def _called(workflow: rules.Workflow) -> Iterator[rules.Workflow]:
    """The workflow and every reusable workflow it calls, transitively."""
    yield workflow
    for job in workflow.jobs.values():
        target = str(job.get("uses", ""))
        if target.startswith("./.github/workflows/"):
            yield from _called(BY_NAME[target.rsplit("/", 1)[1]])


def _pull_request_workflows() -> list[rules.Workflow]:
    triggered = [w for w in BY_NAME.values() if "pull_request" in w.triggers]
    return [called for workflow in triggered for called in _called(workflow)]


def test_the_pull_request_workflows_are_ci_and_what_it_calls() -> None:
    assert {w.name for w in _pull_request_workflows()} == {"ci.yml", "test.yml"}
    # deploy.yml, the only workflow that can select prod, runs only after a push to main.
    callers = [w for w in BY_NAME.values() if DEPLOY in list(_called(w)) and w is not DEPLOY]
    assert [w.name for w in callers] == ["deliver.yml"]
    assert DELIVER.triggers == {"push": {"branches": ["main"]}}


@pytest.mark.parametrize("workflow", _pull_request_workflows(), ids=lambda w: w.name)
def test_no_pull_request_job_names_prod(workflow: rules.Workflow) -> None:
    for job_id, job in workflow.jobs.items():
        text = json.dumps(job)
        assert not re.search(r"\bprod\b", text), f"{workflow.name}: job {job_id} names prod"
        environment = job.get("environment")
        name = environment.get("name") if isinstance(environment, dict) else environment
        assert name in (None, PREVIEW_ENVIRONMENT), f"{workflow.name}: job {job_id}: {name}"
        for step in job.get("steps") or []:
            for stack in STACK_FLAG.findall(str(step.get("run", ""))):
                assert stack in ("staging", '"$stack"'), f"{workflow.name}: {stack}"


def test_the_preview_job_runs_in_the_staging_preview_environment_with_a_team_token() -> None:
    preview = CI.jobs["preview"]
    assert preview["environment"] == PREVIEW_ENVIRONMENT
    oidc = next(s for s in preview["steps"] if "auth-actions" in str(s.get("uses")))
    # A team token, whose team reaches the staging stack only: never the organization's.
    assert oidc["with"]["requested-token-type"] == "urn:pulumi:token-type:access_token:team"
    assert oidc["with"]["scope"] == "team:${{ vars.PULUMI_TEAM }}"


def test_no_workflow_asks_for_an_organization_token() -> None:
    for workflow in BY_NAME.values():
        assert "access_token:organization" not in workflow.text, workflow.name


@pytest.fixture
def preview_bin(tmp_path: Path) -> Path:
    install(tmp_path / "bin")
    stand_in(tmp_path / "bin", "make", "exit 0\n")
    checkout(tmp_path / "checkout", "requirements-dev.lock")
    stacks: dict[str, dict[str, Any]] = {
        name: {"outputs": {}, "history": []} for name in ("staging", "prod")
    }
    (tmp_path / "state.json").write_text(json.dumps({"stacks": stacks}))
    return tmp_path


def _preview(preview_bin: Path, contexts: dict[str, dict[str, str]]) -> list[list[str]]:
    run = run_job(
        CI,
        "preview",
        work_dir=preview_bin,
        path=search_path(preview_bin / "bin", Path(sys.executable).parent),
        contexts=contexts,
        extra_env={"FAKE_PULUMI_STATE": str(preview_bin / "state.json")},
        cwd=preview_bin / "checkout",
    )
    assert not run.failed, run.log
    return list(json.loads((preview_bin / "state.json").read_text()).get("calls", []))


@pytest.mark.parametrize(
    "contexts",
    [
        {"vars": {}, "secrets": {"PULUMI_ACCESS_TOKEN": "t"}},
        {"vars": {"PULUMI_ORGANIZATION": "acme", "PULUMI_TEAM": "staging-preview"}, "secrets": {}},
        # Whatever the event or a variable says, the job's own stack list is all it runs.
        {"vars": {"STACK": "prod"}, "secrets": {"PULUMI_ACCESS_TOKEN": "t"},
         "github": {"event_name": "pull_request", "base_ref": "prod"}},
    ],
)  # fmt: skip
def test_a_pull_request_previews_staging_and_nothing_else(
    preview_bin: Path, contexts: dict[str, dict[str, str]]
) -> None:
    calls = _preview(preview_bin, contexts)

    stacks = {call[call.index("--stack") + 1] for call in calls if "--stack" in call}
    assert stacks == {"staging"}
    assert [call[0] for call in calls] == ["preview"]


def _secret_reads(value: Any) -> set[str]:
    return set(re.findall(r"secrets\.([A-Za-z_]+)", json.dumps(value)))


def test_deploy_secrets_come_from_the_environment_never_from_the_caller() -> None:
    """A job without `environment:` reads repository secrets, which every branch can read."""
    for workflow in BY_NAME.values():
        for job_id, job in workflow.jobs.items():
            assert "secrets" not in job, f"{workflow.name}: job {job_id} passes secrets on"
            if _secret_reads(job) - {"GITHUB_TOKEN"}:
                assert job.get("environment"), f"{workflow.name}: job {job_id}"


def test_prod_is_previewed_with_the_policy_pack_in_the_gated_deploy_job() -> None:
    job = DEPLOY.jobs["deploy"]
    ids = [str(step.get("id", "")) for step in job["steps"]]
    preview = job["steps"][ids.index("preview")]
    assert 'pulumi preview --stack "$STACK" --policy-pack infra/policy' in preview["run"]
    assert ids.index("preview") < ids.index("up")
    assert job["environment"]["name"] == "${{ inputs.stack }}"
