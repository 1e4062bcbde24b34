"""The deploy job, run step by step: deploy by digest, check, smoke-test, roll back on failure.

`pulumi` is the stand-in of tests/infra/ops/fake_pulumi.py (one JSON file of
stack state), `pytest` a stand-in that passes or fails the smoke tests as told
and records what it was given, and `ops` the real CLI, which the rollback step
calls.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.infra.ops.fake_pulumi import IMAGE_KEY, history_entry, install
from tests.workflows import rules
from tests.workflows.runner import JobRun, checkout, run_job, search_path, stand_in

REPOSITORY = "ghcr.io/acme/jobsearch-api"
OLD = f"{REPOSITORY}@sha256:{'1' * 64}"
NEW = f"{REPOSITORY}@sha256:{'2' * 64}"
OTHER = f"{REPOSITORY}@sha256:{'3' * 64}"
DEPLOY = next(w for w in rules.load_all() if w.name == "deploy.yml")


# Records, at each `pulumi preview` and `pulumi up` (the rollback's included), the
# keys ssh-agent holds and the secrets-provider passphrase, then runs the stand-in.
RECORDING_PULUMI = """\
case " $* " in
  *" up "*|*" preview "*)
    {
      echo "CALL $1"
      echo "PASSPHRASE ${PULUMI_CONFIG_PASSPHRASE-<unset>}"
      echo "AGENT ${SSH_AGENT_PID:-<none>}"
      ssh-add -L 2>&1 | sed 's/^/KEY /'
    } >> "$PULUMI_ENV_LOG"
    ;;
esac
exec "$(dirname "$0")/pulumi-stand-in" "$@"
"""


@dataclass(frozen=True)
class DeployKey:
    private: str
    public: str


@pytest.fixture(scope="module")
def deploy_key(tmp_path_factory: pytest.TempPathFactory) -> DeployKey:
    path = tmp_path_factory.mktemp("deploy-key") / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "deploy@ci", "-f", str(path)],
        check=True,
        timeout=30,
    )
    return DeployKey(path.read_text(), path.with_suffix(".pub").read_text().strip())


@dataclass
class Pipeline:
    directory: Path
    state_path: Path
    key: DeployKey

    def stacks(self) -> dict[str, Any]:
        return dict(json.loads(self.state_path.read_text())["stacks"])

    def calls(self) -> list[list[str]]:
        return list(json.loads(self.state_path.read_text()).get("calls", []))

    def secrets(self, **changes: str) -> dict[str, str]:
        secrets = {
            "PULUMI_ACCESS_TOKEN": "pul-token",
            "DEPLOY_SSH_KEY": self.key.private,
            "SMOKE_SSH_KEY": "ssh-key",
        }
        secrets.update(changes)
        return {name: value for name, value in secrets.items() if value}

    def pulumi_env(self) -> list[dict[str, Any]]:
        """What `pulumi preview` and `pulumi up` saw, call by call."""
        log = self.directory / "pulumi-env.log"
        calls: list[dict[str, Any]] = []
        for line in log.read_text().splitlines() if log.exists() else []:
            word, _, rest = line.partition(" ")
            if word == "CALL":
                calls.append({"call": rest, "keys": []})
            elif word == "KEY":
                calls[-1]["keys"].append(rest)
            else:
                calls[-1][word.lower()] = rest
        return calls

    def smoke_env(self) -> dict[str, str]:
        return dict(json.loads((self.directory / "smoke-env.json").read_text()))

    def run(self, stack: str, image: str, *, smoke_passes: bool = True,
            secrets: dict[str, str] | None = None) -> JobRun:  # fmt: skip
        (self.directory / "smoke-exit").write_text("0" if smoke_passes else "1")
        return run_job(
            DEPLOY,
            "deploy",
            work_dir=self.directory,
            path=search_path(self.directory / "bin", Path(sys.executable).parent),
            contexts={
                "inputs": {"stack": stack, "image": image},
                "vars": {},
                "secrets": self.secrets() if secrets is None else secrets,
            },
            extra_env={
                "FAKE_PULUMI_STATE": str(self.state_path),
                "PULUMI_ENV_LOG": str(self.directory / "pulumi-env.log"),
            },
            cwd=checkout(self.directory / "checkout", "requirements-dev.lock"),
        )


def stack(image: str | None, **config: str) -> dict[str, Any]:
    outputs = {"url": "https://api.example.test", "host": "203.0.113.10"}
    if image:
        outputs["image_ref"] = image
    return {
        "outputs": outputs,
        "history": [history_entry(1, image)] if image else [],
        "config": {"jobsearch:hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample", **config},
    }


@pytest.fixture
def pipeline(tmp_path: Path, deploy_key: DeployKey) -> Pipeline:
    install(tmp_path / "bin").rename(tmp_path / "bin" / "pulumi-stand-in")
    stand_in(tmp_path / "bin", "pulumi", RECORDING_PULUMI)
    stand_in(tmp_path / "bin", "make", "exit 0\n")
    # Records the smoke tests' environment, then passes or fails as the test says.
    stand_in(
        tmp_path / "bin",
        "pytest",
        f'"{sys.executable}" -c "import json, os; json.dump(dict(os.environ), '
        f"open('{tmp_path}/smoke-env.json', 'w'))\"\n"
        f'exit "$(cat {tmp_path}/smoke-exit)"\n',
    )
    state_path = tmp_path / "pulumi-state.json"
    state_path.write_text(
        json.dumps(
            {
                "stacks": {
                    "staging": stack(OLD),
                    "prod": stack(OLD, **{"jobsearch:promoteFrom": "staging"}),
                }
            }
        )
    )
    return Pipeline(tmp_path, state_path, deploy_key)


def test_a_good_image_is_deployed_by_digest_and_smoke_tested(pipeline: Pipeline) -> None:
    run = pipeline.run("staging", NEW)

    assert not run.failed, run.log
    staging = pipeline.stacks()["staging"]
    assert staging["config"][IMAGE_KEY] == NEW
    assert staging["outputs"]["image_ref"] == NEW
    assert run.step("Smoke tests").outputs == {"image": NEW}
    assert run.step("Roll back").outcome == "skipped"
    up = next(call for call in pipeline.calls() if call[0] == "up")
    assert up[up.index("--policy-pack") + 1] == "infra/policy"
    smoke = pipeline.smoke_env()
    assert smoke["SMOKE_BASE_URL"] == "https://api.example.test"
    # Their own restricted login, not the deploy user (who is in the docker group).
    assert smoke["SMOKE_SSH_HOST"] == "smoke@203.0.113.10"
    assert Path(smoke["SMOKE_SSH_KNOWN_HOSTS"]).read_text().startswith("203.0.113.10 ssh-ed25519")


def test_failed_smoke_tests_roll_back_to_the_previous_digest_and_fail(pipeline: Pipeline) -> None:
    run = pipeline.run("staging", NEW, smoke_passes=False)

    assert run.failed
    assert run.step("Roll back").outcome == "failure"  # it rolls back, then fails the job
    assert "::error title=staging deploy failed::" in run.log
    staging = pipeline.stacks()["staging"]
    assert staging["outputs"]["image_ref"] == OLD
    assert staging["config"][IMAGE_KEY] == OLD
    assert "## staging rolled back" in run.step("Roll back").summary


def test_a_failed_update_is_rolled_back_too(pipeline: Pipeline) -> None:
    state = json.loads(pipeline.state_path.read_text())
    state["stacks"]["staging"]["fail_up"] = 1
    pipeline.state_path.write_text(json.dumps(state))

    run = pipeline.run("staging", NEW)

    assert run.failed
    assert run.step("pulumi up").outcome == "failure"
    assert run.step("Smoke tests").outcome == "skipped"
    assert run.step("Roll back").outcome == "failure"
    assert pipeline.stacks()["staging"]["config"][IMAGE_KEY] == OLD


def test_a_tag_is_refused_before_anything_changes(pipeline: Pipeline) -> None:
    run = pipeline.run("staging", f"{REPOSITORY}:latest")

    assert run.failed
    assert run.step("The image must be pinned by digest").outcome == "failure"
    assert [name for name in run.ran if name != "Check out"] == [
        "The image must be pinned by digest",
        "Stop the SSH agent",  # always; it stops nothing here
    ]
    assert pipeline.calls() == []


def test_prod_deploys_exactly_what_staging_passed(pipeline: Pipeline) -> None:
    assert not pipeline.run("staging", NEW).failed

    run = pipeline.run("prod", NEW)

    assert not run.failed, run.log
    prod = pipeline.stacks()["prod"]
    assert prod["outputs"]["image_ref"] == NEW
    assert IMAGE_KEY not in prod["config"], "prod must promote, not pin"
    # Prod's first preview is here, after the merge, in its approval-gated job.
    prod_calls = [call[0] for call in pipeline.calls() if "prod" in call and call[0] != "stack"]
    assert prod_calls.index("preview") < prod_calls.index("up")
    preview = next(c for c in pipeline.calls() if c[0] == "preview" and "prod" in c)
    assert preview[preview.index("--policy-pack") + 1] == "infra/policy"


def test_prod_refuses_a_digest_staging_no_longer_runs(pipeline: Pipeline) -> None:
    assert not pipeline.run("staging", OTHER).failed

    run = pipeline.run("prod", NEW)

    assert run.failed
    assert run.step("pulumi up").outcome == "skipped"
    assert run.step("Roll back").outcome == "skipped"
    assert f"staging now runs {OTHER}, not {NEW}" in run.log
    assert pipeline.stacks()["prod"]["outputs"]["image_ref"] == OLD


def test_failed_prod_smoke_tests_pin_prod_to_its_previous_image(pipeline: Pipeline) -> None:
    assert not pipeline.run("staging", NEW).failed

    run = pipeline.run("prod", NEW, smoke_passes=False)

    assert run.failed
    prod = pipeline.stacks()["prod"]
    assert prod["outputs"]["image_ref"] == OLD
    assert prod["config"][IMAGE_KEY] == OLD
    # The next promotion stops until a person removes the pin (runbooks/rollback.md).
    again = pipeline.run("prod", NEW)
    assert again.failed
    assert "pulumi config rm jobsearch:imageRef -s prod" in again.log
    assert pipeline.stacks()["prod"]["outputs"]["image_ref"] == OLD


def test_a_first_deploy_that_fails_says_there_is_nothing_to_roll_back_to(
    pipeline: Pipeline,
) -> None:
    state = json.loads(pipeline.state_path.read_text())
    state["stacks"]["staging"] = stack(None)
    pipeline.state_path.write_text(json.dumps(state))

    run = pipeline.run("staging", NEW, smoke_passes=False)

    assert run.failed
    assert run.step("Roll back").outcome == "skipped"
    assert run.step("Nothing to roll back to").outcome == "failure"
    assert "nothing to roll back to" in run.log


def test_without_pulumi_credentials_nothing_is_touched(pipeline: Pipeline) -> None:
    run = pipeline.run("staging", NEW, secrets={})

    assert run.failed
    assert "Set the staging environment's variable PULUMI_ORGANIZATION" in run.log
    assert pipeline.calls() == []


def test_without_the_ssh_key_the_smoke_step_fails_and_rolls_back(pipeline: Pipeline) -> None:
    run = pipeline.run("staging", NEW, secrets=pipeline.secrets(SMOKE_SSH_KEY=""))

    assert run.failed
    assert "has no secret SMOKE_SSH_KEY" in run.log
    assert pipeline.stacks()["staging"]["outputs"]["image_ref"] == OLD


def test_the_host_key_the_stack_made_is_preferred_to_the_configured_one(
    pipeline: Pipeline,
) -> None:
    state = json.loads(pipeline.state_path.read_text())
    state["stacks"]["staging"]["outputs"]["host_key"] = "ssh-ed25519 AAAAGeneratedByTheStack"
    del state["stacks"]["staging"]["config"]["jobsearch:hostKey"]
    pipeline.state_path.write_text(json.dumps(state))

    run = pipeline.run("staging", NEW)

    assert not run.failed, run.log
    known_hosts = Path(pipeline.smoke_env()["SMOKE_SSH_KNOWN_HOSTS"]).read_text()
    assert known_hosts == "203.0.113.10 ssh-ed25519 AAAAGeneratedByTheStack\n"


def _agent_gone(pid: str, within: float = 10) -> bool:
    """No such process, or only a zombie (the agent daemonizes: nobody here reaps it), within
    a few seconds: `ssh-agent -k` sends SIGTERM and returns before the agent has exited."""
    deadline = time.monotonic() + within
    while True:
        try:
            stat = Path(f"/proc/{int(pid)}/stat").read_text()
        except FileNotFoundError:
            return True
        if stat.rpartition(")")[2].split()[0] == "Z":
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def test_pulumi_up_and_the_rollback_reach_the_host_with_the_deploy_key(
    pipeline: Pipeline,
) -> None:
    """The provider's SSH (docker, command.remote) uses ssh-agent: the key must be in it."""
    run = pipeline.run("staging", NEW, smoke_passes=False)

    assert run.step("Roll back").outcome == "failure", run.log  # rolled back, then failed
    calls = pipeline.pulumi_env()
    assert [call["call"] for call in calls] == ["preview", "up", "up"]  # deploy, then rollback
    for call in calls:
        assert call["keys"] == [pipeline.key.public], call
    assert pipeline.stacks()["staging"]["outputs"]["image_ref"] == OLD
    # The agent does not outlive the job.
    assert _agent_gone(calls[0]["agent"])
    assert run.step("Stop the SSH agent").outcome == "success"


def test_without_the_deploy_key_nothing_is_touched(pipeline: Pipeline) -> None:
    run = pipeline.run("staging", NEW, secrets=pipeline.secrets(DEPLOY_SSH_KEY=""))

    assert run.failed
    assert "the staging environment has no secret DEPLOY_SSH_KEY" in run.log
    assert [call[0] for call in pipeline.calls() if call[0] in ("up", "preview", "config")] == []
    assert run.step("Roll back").outcome == "skipped"


def test_a_key_ssh_add_refuses_stops_the_deploy_before_anything_changes(
    pipeline: Pipeline,
) -> None:
    run = pipeline.run("staging", NEW, secrets=pipeline.secrets(DEPLOY_SSH_KEY="not a key"))

    assert run.failed
    assert [call[0] for call in pipeline.calls() if call[0] in ("up", "preview", "config")] == []


def test_the_passphrase_reaches_pulumi_only_when_the_environment_has_one(
    pipeline: Pipeline,
) -> None:
    with_passphrase = pipeline.run(
        "staging", NEW, secrets=pipeline.secrets(PULUMI_CONFIG_PASSPHRASE="correct horse")
    )
    assert not with_passphrase.failed, with_passphrase.log
    assert {call["passphrase"] for call in pipeline.pulumi_env()} == {"correct horse"}

    (pipeline.directory / "pulumi-env.log").unlink()
    without = pipeline.run("staging", OTHER)
    assert not without.failed, without.log
    # Unset, not empty: an empty passphrase is a wrong one for the passphrase provider.
    assert {call["passphrase"] for call in pipeline.pulumi_env()} == {"<unset>"}


def test_a_host_on_another_ssh_port_is_pinned_as_host_and_port(pipeline: Pipeline) -> None:
    """ssh looks a non-22 port up as `[host]:port` in known_hosts (review L10)."""
    state = json.loads(pipeline.state_path.read_text())
    state["stacks"]["staging"]["config"]["jobsearch:sshPort"] = "2222"
    pipeline.state_path.write_text(json.dumps(state))

    run = pipeline.run("staging", NEW)

    assert not run.failed, run.log
    smoke = pipeline.smoke_env()
    known_hosts = Path(smoke["SMOKE_SSH_KNOWN_HOSTS"]).read_text()
    assert known_hosts == "[203.0.113.10]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample\n"
    assert smoke["SMOKE_SSH_PORT"] == "2222"


def test_port_22_keeps_the_plain_host_in_known_hosts(pipeline: Pipeline) -> None:
    run = pipeline.run("staging", NEW)

    assert not run.failed, run.log
    smoke = pipeline.smoke_env()
    assert Path(smoke["SMOKE_SSH_KNOWN_HOSTS"]).read_text().startswith("203.0.113.10 ssh-ed25519")
    assert smoke["SMOKE_SSH_PORT"] == "22"


def test_the_digest_rule_is_the_projects_own(pipeline: Pipeline) -> None:
    """infra/image_refs.py decides, with Docker's grammar: an empty path component (which a
    loose pattern lets through) is refused with its message, before anything changes."""
    run = pipeline.run("staging", f"ghcr.io/acme//jobsearch-api@sha256:{'2' * 64}")

    assert run.failed
    assert run.step("The image must be pinned by digest").outcome == "failure"
    assert "is not an image pinned by digest: give REGISTRY/OWNER/NAME@sha256:<64 hex>" in run.log
    assert pipeline.calls() == []


def test_the_promotion_rule_is_the_projects_own(pipeline: Pipeline) -> None:
    """The workflow asks infra/promotion.py: its messages are the ones the job prints."""
    assert not pipeline.run("staging", OTHER).failed

    run = pipeline.run("prod", NEW)

    step = run.step("Pin the image, or check that the source runs it")
    assert step.outcome == "failure"
    assert f"::error::staging now runs {OTHER}, not {NEW}, which this run tested" in step.stdout
