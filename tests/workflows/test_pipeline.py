"""The shape of the pipeline: what runs on a pull request, and how main reaches prod."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.infra.ops.fake_pulumi import install
from tests.workflows import rules
from tests.workflows.runner import checkout, run_job, search_path, stand_in

BY_NAME = {w.name: w for w in rules.load_all()}
CI, DELIVER, DEPLOY, TEST = (
    BY_NAME[n] for n in ("ci.yml", "deliver.yml", "deploy.yml", "test.yml")
)


def test_pull_requests_run_the_tests_build_the_image_and_preview_staging() -> None:
    assert set(CI.triggers) == {"pull_request"}
    assert CI.jobs["test"]["uses"] == "./.github/workflows/test.yml"
    steps = "\n".join(str(step.get("run", "")) for _, step in TEST.steps())
    assert ".ci/run" in steps
    assert "\nmake test\n" in (rules.ROOT / ".ci" / "run").read_text()
    image = "\n".join(str(step.get("run", "")) for step in CI.jobs["image"]["steps"])
    assert "docker build --file service/Dockerfile" in image
    preview = CI.jobs["preview"]
    assert preview["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    assert preview["environment"] == "staging-preview"
    assert preview["permissions"] == {
        "contents": "read",
        "id-token": "write",
        "pull-requests": "write",
    }


def test_main_builds_once_and_deploys_that_digest_to_staging_then_prod() -> None:
    assert DELIVER.triggers == {"push": {"branches": ["main"]}}
    jobs = DELIVER.jobs
    assert jobs["image"]["needs"] == "test"
    assert jobs["image"]["permissions"]["packages"] == "write"
    assert jobs["staging"]["uses"] == jobs["prod"]["uses"] == "./.github/workflows/deploy.yml"
    assert jobs["staging"]["with"] == {
        "stack": "staging",
        "image": "${{ needs.image.outputs.image }}",
    }
    assert jobs["prod"]["needs"] == "staging"
    # Exactly the digest staging passed: its output, never a rebuild or a tag.
    assert jobs["prod"]["with"] == {
        "stack": "prod",
        "image": "${{ needs.staging.outputs.image }}",
    }
    builds = [job for job in jobs.values() if "docker build" in json.dumps(job)]
    assert len(builds) == 1


def test_the_deploy_job_is_one_per_stack_never_cancelled_and_in_its_environment() -> None:
    assert set(DEPLOY.triggers) == {"workflow_call"}
    assert set(DEPLOY.triggers["workflow_call"]["inputs"]) == {"stack", "image"}
    job = DEPLOY.jobs["deploy"]
    assert job["concurrency"] == {
        "group": "deploy-${{ inputs.stack }}",
        "cancel-in-progress": "false",
    }
    # The prod call passes stack: prod, so its job runs in the `prod` environment,
    # whose required reviewers GitHub enforces before the job starts.
    assert job["environment"]["name"] == "${{ inputs.stack }}"
    for caller in ("staging", "prod"):
        stack = DELIVER.jobs[caller]["with"]["stack"]
        assert job["environment"]["name"].replace("${{ inputs.stack }}", stack) == caller
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    assert DEPLOY.triggers["workflow_call"]["outputs"]["image"]["value"] == (
        "${{ jobs.deploy.outputs.image }}"
    )
    assert job["outputs"]["image"] == "${{ steps.smoke.outputs.image }}"


def test_the_deploy_steps_run_in_the_order_that_makes_rollback_possible() -> None:
    ids = [str(step.get("id", "")) for step in DEPLOY.jobs["deploy"]["steps"]]
    order = [ids.index(i) for i in ("before", "up", "deployed", "smoke")]
    assert order == sorted(order)
    rollback = next(s for s in DEPLOY.jobs["deploy"]["steps"] if s.get("name") == "Roll back")
    assert ids.index("smoke") < DEPLOY.jobs["deploy"]["steps"].index(rollback)
    assert rollback["if"].startswith("failure()")
    assert 'ops rollback --stack "$STACK" --to "$PREVIOUS"' in rollback["run"]
    assert rollback["run"].rstrip().endswith("exit 1")


def test_pulumi_and_python_versions_come_from_the_lock() -> None:
    for workflow in (CI, DEPLOY):
        for _, step in workflow.steps():
            if str(step.get("uses", "")).startswith("pulumi/actions@"):
                assert step["with"]["pulumi-version"] == "${{ steps.versions.outputs.pulumi }}"
            if str(step.get("uses", "")).startswith("actions/setup-python@"):
                assert step["with"]["python-version"] == "3.11"


def test_the_make_targets_the_workflows_call_exist() -> None:
    makefile = (rules.ROOT / "Makefile").read_text()
    for target in ("install", "test"):
        assert f"\n{target}:" in makefile


@pytest.fixture
def preview_bin(tmp_path: Path) -> Path:
    install(tmp_path / "bin")
    stand_in(tmp_path / "bin", "make", "exit 0\n")
    checkout(tmp_path / "checkout", "requirements-dev.lock")
    state = {
        "stacks": {
            "staging": {"outputs": {}, "history": [], "fail_preview": True},
            "prod": {"outputs": {}, "history": []},
        }
    }
    (tmp_path / "state.json").write_text(json.dumps(state))
    return tmp_path


def test_the_preview_step_previews_staging_with_the_policy_pack(preview_bin: Path) -> None:
    run = run_job(
        CI,
        "preview",
        work_dir=preview_bin,
        path=search_path(preview_bin / "bin", Path(sys.executable).parent),
        contexts={"vars": {}, "secrets": {"PULUMI_ACCESS_TOKEN": "t"}, "steps": {}},
        extra_env={"FAKE_PULUMI_STATE": str(preview_bin / "state.json")},
        cwd=preview_bin / "checkout",
    )

    calls = json.loads((preview_bin / "state.json").read_text())["calls"]
    previews = [call for call in calls if call[0] == "preview"]
    assert [call[call.index("--stack") + 1] for call in previews] == ["staging"]
    assert all(call[call.index("--policy-pack") + 1] == "infra/policy" for call in previews)
    assert run.step("pulumi preview").outputs == {"failed": "staging"}
    assert run.step("Fail when a preview failed").outcome == "failure"
    written = (preview_bin / "checkout" / "preview-staging.txt").read_text()
    assert "Previewing update (staging)" in written


COMMENT_HARNESS = r"""
const fs = require('fs');
const script = fs.readFileSync(process.argv[2], 'utf8');
const state = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
const calls = [];
const github = {
  paginate: async (method, params) => {
    calls.push(['list', params.issue_number]);
    return state.comments;
  },
  rest: { issues: {
    listComments: 'listComments',
    updateComment: async (p) => { calls.push(['update', p.comment_id, p.body]); },
    createComment: async (p) => { calls.push(['create', p.issue_number, p.body]); },
  } },
};
const context = { repo: { owner: 'acme', repo: 'jobsearch' }, issue: { number: 7 } };
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
new AsyncFunction('require', 'github', 'context', script)(require, github, context)
  .then(() => console.log(JSON.stringify(calls)))
  .catch((error) => { console.error(error); process.exit(1); });
"""


def _comment_calls(
    tmp_path: Path, comments: list[dict[str, Any]], failed: str = "staging"
) -> list[list[Any]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is needed to run the github-script step")
    step = next(s for s in CI.jobs["preview"]["steps"] if "github-script" in str(s.get("uses")))
    (tmp_path / "script.js").write_text(step["with"]["script"])
    (tmp_path / "state.json").write_text(json.dumps({"comments": comments}))
    (tmp_path / "harness.js").write_text(COMMENT_HARNESS)
    (tmp_path / "preview-staging.txt").write_text("Previewing update (staging)\n```x```\n")
    completed = subprocess.run(
        [node, "harness.js", "script.js", "state.json"],
        cwd=tmp_path,
        env={"FAILED": failed, "HEAD_SHA": "abc123", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return list(json.loads(completed.stdout))


def test_the_first_preview_creates_one_comment(tmp_path: Path) -> None:
    calls = _comment_calls(tmp_path, [])

    assert [call[0] for call in calls] == ["list", "create"]
    body = calls[1][2]
    assert body.startswith("<!-- jobsearch-pulumi-preview -->")
    assert "### staging: FAILED" in body
    assert "### prod" not in body
    assert "```x```" not in body  # the preview cannot close the code block early


def test_a_later_preview_updates_that_comment_instead_of_adding_one(tmp_path: Path) -> None:
    ours = {
        "id": 11,
        "user": {"login": "github-actions[bot]"},
        "body": "<!-- jobsearch-pulumi-preview -->\nold",
    }
    quoted = {"id": 12, "user": {"login": "someone"}, "body": "> <!-- jobsearch-pulumi-preview -->"}

    calls = _comment_calls(tmp_path, [quoted, ours])

    assert [call[:2] for call in calls] == [["list", 7], ["update", 11]]


DOCKER_STAND_IN = """\
printf '%s\\n' "$*" >> "$DOCKER_CALLS"
case "$1 $2" in
  "login "*) cat > "$DOCKER_CALLS.stdin" ;;
  "image inspect")
    case "$*" in
      *.Size*) echo "${SIZE_REPLY-140000000}" ;;
      *) echo "$DIGEST_REPLY" ;;
    esac ;;
esac
"""


def _image_job(
    tmp_path: Path, digest_reply: str, size_reply: str = "140000000"
) -> tuple[Any, list[str]]:
    stand_in(tmp_path / "bin", "docker", DOCKER_STAND_IN)
    run = run_job(
        DELIVER,
        "image",
        work_dir=tmp_path,
        path=search_path(tmp_path / "bin"),
        contexts={"github": {"token": "ghs_registry_token"}},
        extra_env={
            "DOCKER_CALLS": str(tmp_path / "calls"),
            "DIGEST_REPLY": digest_reply,
            "SIZE_REPLY": size_reply,
            "GITHUB_SHA": "0" * 40,
            "GITHUB_ACTOR": "octocat",
            "GITHUB_REPOSITORY": "Acme/jobsearch",
            "GITHUB_REPOSITORY_OWNER": "Acme",
            "GITHUB_SERVER_URL": "https://github.com",
        },
        cwd=rules.ROOT,  # `git log` needs the repository
    )
    return run, (tmp_path / "calls").read_text().splitlines()


def test_the_image_job_builds_once_pushes_and_outputs_the_digest(tmp_path: Path) -> None:
    pushed = f"ghcr.io/acme/jobsearch-api@sha256:{'a' * 64}"

    run, calls = _image_job(tmp_path, pushed)

    assert not run.failed, run.log
    assert run.step("Push to GHCR and take the digest").outputs == {"image": pushed}
    assert [call.split()[0] for call in calls] == [
        "build",
        "image",  # its size, against the budget
        "login",
        "push",
        "logout",
        "image",
    ]
    assert f"--tag ghcr.io/acme/jobsearch-api:{'0' * 40} ." in calls[0]
    assert "ghs_registry_token" not in "\n".join(calls), "the token goes through stdin only"
    assert (tmp_path / "calls.stdin").read_text() == "ghs_registry_token"


def test_the_image_job_refuses_a_push_without_a_digest(tmp_path: Path) -> None:
    run, _ = _image_job(tmp_path, "ghcr.io/acme/jobsearch-api:latest")

    assert run.failed
    assert "no digest for the pushed image" in run.log
    assert run.step("Push to GHCR and take the digest").outputs == {}


def test_the_image_job_checks_the_digest_with_the_projects_rule(tmp_path: Path) -> None:
    # A loose pattern would take it; infra/image_refs.py (Docker's grammar) does not.
    run, _ = _image_job(tmp_path, f"ghcr.io/acme//jobsearch-api@sha256:{'a' * 64}")

    assert run.failed
    assert "is not an image pinned by digest" in run.log
    assert "no digest for the pushed image" in run.log
    assert run.step("Push to GHCR and take the digest").outputs == {}
