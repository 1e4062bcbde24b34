"""Every workflow follows the rules; a workflow that breaks one is caught."""

from __future__ import annotations

import pytest

from tests.workflows import rules

WORKFLOWS = rules.load_all()


def test_the_workflows_are_there() -> None:
    assert {w.name for w in WORKFLOWS} == {"ci.yml", "deliver.yml", "deploy.yml", "test.yml"}


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda w: w.name)
def test_a_workflow_follows_every_rule(workflow: rules.Workflow) -> None:
    assert rules.problems(workflow) == []


# Every third-party action, at the release it is pinned to. A new action or a
# bump changes this table in the same change, where a reviewer sees it.
REVIEWED_PINS = {
    "actions/checkout": ("11bd71901bbe5b1630ceea73d27597364c9af683", "v4.2.2"),
    "actions/setup-python": ("a26af69be951a213d495a4c3e4e4022e16d87065", "v5.6.0"),
    "actions/github-script": ("60a0d83039c74a4aee543508d2ffcb1c3799cdea", "v7.0.1"),
    "pulumi/actions": ("8e5e406f4007fca908480587cb9893c07090f58d", "v7.0.0"),
    "pulumi/auth-actions": ("141415910c3beb54e03b48e9057c204c97b956f2", "v2.1.0"),
}


def test_every_action_is_pinned_to_its_reviewed_release() -> None:
    pins: dict[str, set[tuple[str, str]]] = {}
    for workflow in WORKFLOWS:
        for line in workflow.text.splitlines():
            if found := rules.PINNED.match(line):
                pins.setdefault(found["action"], set()).add((found["sha"], found["version"]))
    assert pins == {action: {pin} for action, pin in REVIEWED_PINS.items()}


BROKEN = [
    ("permissions: {}\n", "permissions: write-all\n", "top-level `permissions: {}` is missing"),
    ("    timeout-minutes: 30\n", "", "has no timeout-minutes"),
    (
        "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2",
        "actions/checkout@v4",
        "is not pinned",
    ),
    (
        "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2",
        "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683",
        "is not pinned",
    ),
    ("persist-credentials: false", "persist-credentials: true", "credentials kept"),
    ('--tag "jobsearch-api:pr-$GITHUB_SHA" .', '--tag "jobsearch-api:pr-${{ github.sha }}" .',
     "${{ }} in run"),
    ("  pull_request:\n", "  pull_request_target:\n", "triggered by pull_request_target"),
]  # fmt: skip


@pytest.mark.parametrize(("before", "after", "problem"), BROKEN)
def test_a_broken_copy_of_ci_yml_is_caught(before: str, after: str, problem: str) -> None:
    original = next(w for w in WORKFLOWS if w.name == "ci.yml")
    assert before in original.text
    broken = rules.Workflow.load(original.path, original.text.replace(before, after, 1))

    found = rules.problems(broken)

    assert any(problem in item for item in found), found


def test_a_job_without_its_own_permissions_is_caught() -> None:
    original = next(w for w in WORKFLOWS if w.name == "test.yml")
    broken = rules.Workflow.load(
        original.path, original.text.replace("    permissions:\n      contents: read\n", "", 1)
    )

    assert any("sets no permissions" in item for item in rules.problems(broken))
