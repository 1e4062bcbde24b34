"""Every alert's runbook, rehearsed on the test instance: the runbooks lead somewhere.

For each alert of infra/alerts.py: inject its fault (`ops local fault`, or what the
runbook names as the cause); read the alert's condition the way its monitor reads
it, through the proxy (tests/runbooks/rehearsal.py); run the runbook's Diagnosis
lines here (ssh's remote part on this engine, STACK=test) and check that what
they print names the cause; then apply the runbook's Mitigation, or clear the
fault, and read the condition clear. Whatever happens, the instance is left
healthy: every fault is cleared and every service spec a test changed is
converged back by the runner (`instance`'s finalizer).
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import docker
import httpx
import pytest

from harness.servers import free_port
from infra.alerts import ALERTS, CERTIFICATE_DAYS
from infra.components.monitoring import ERROR_RATE_COUNT, ERROR_RATE_WINDOW_MINUTES
from infra.local.images import build_from_files
from infra.local.runner import FINGERPRINT_LABEL
from infra.standins import SOURCES
from infra.topology import PROXY_UID, app_env
from tests.runbooks import rehearsal
from tests.runbooks.conftest import REHEARSALS
from tests.runbooks.rehearsal import (
    RunbookShell,
    Transcript,
    api_check_fails,
    runbook_line,
    wait_for,
    wait_until_clear,
)
from tests.support.docker import SERVICE_TAG
from tests.support.local_topology import TestTopology

STACK: Final = "test"
OPS = str(rehearsal.VENV_BIN / "ops")
HERE = Path(__file__).resolve().parent
Rehearsal = TypeVar("Rehearsal", bound=Callable[..., None])


def search(url: str, source: str = "jsearch", title: str | None = None) -> httpx.Response:
    """A search the cache cannot answer (a new title each time): a call to the source."""
    body = {"jobTitle": title or f"rehearsal {uuid.uuid4().hex[:12]}"}
    return httpx.post(f"{url}/api/jobs/{source}", json=body, timeout=60, trust_env=False)


def docker_cli(*args: str) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr}"
    return done.stdout


@dataclass
class Instance:
    """The test instance as a rehearsal sees it."""

    topology: TestTopology
    client: docker.DockerClient
    shell: RunbookShell
    home: Path
    faulted: set[str] = field(default_factory=set)

    @property
    def url(self) -> str:
        return self.topology.url

    def service_name(self, role: str) -> str:
        return f"{self.topology.description.prefix}-{role}"

    def fault(self, *args: str) -> str:
        """`ops local --env test fault ...`: what it printed (the alert and runbook it names)."""
        self.faulted.add(args[0])
        done = subprocess.run(
            [OPS, "local", "--env", STACK, "fault", *args],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, f"ops local fault {' '.join(args)}: {done.stderr}"
        return done.stdout

    def diagnose(self, alert: str, shell: RunbookShell | None = None) -> Transcript:
        return (shell or self.shell).run_section(alert, "## Diagnosis")

    def mitigate(self, alert: str, *needles: str) -> str:
        """Run the Mitigation line holding every needle; what it printed."""
        ran = self.shell.run(runbook_line(alert, "## Mitigation", *needles))
        assert ran.exit_code == 0, ran
        return ran.output


def _services(client: docker.DockerClient) -> list[Any]:
    return list(client.services.list(filters={"label": f"org.jobsearch.environment={STACK}"}))


def _comparable(spec: Any) -> Any:
    """A spec without what the engine leaves out or adds empty."""
    if isinstance(spec, dict):
        kept = {key: _comparable(value) for key, value in spec.items()}
        return {key: value for key, value in kept.items() if value not in (None, {}, [], "")}
    if isinstance(spec, list):
        return [_comparable(item) for item in spec]
    return spec


def _restore(instance: Instance, specs_before: dict[str, Any]) -> None:
    """Clear every fault and converge every changed spec back; then wait until healthy."""
    topology, client = instance.topology, instance.client
    for source in sorted(instance.faulted & set(SOURCES)):
        instance.fault(source, "healthy")
    for service in _services(client):
        if _comparable(service.attrs["Spec"]) != specs_before.get(service.name):
            # The runner converges what its fingerprint says changed: say so.
            docker_cli(
                "service", "update", "--detach", "--label-add",
                f"{FINGERPRINT_LABEL}=changed-by-a-rehearsal", service.name,
            )  # fmt: skip
    topology.runner.up(topology.images.service)
    wait_until_clear("/health", lambda: api_check_fails(topology.url, "health"))
    wait_until_clear("/ready", lambda: api_check_fails(topology.url, "ready_body"))


@pytest.fixture
def instance(
    topology: TestTopology,
    docker_client: docker.DockerClient,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Instance]:
    started = time.monotonic()
    specs_before = {s.name: _comparable(s.attrs["Spec"]) for s in _services(docker_client)}
    shell = RunbookShell(tmp_path / "bin", {"STACK": STACK, "URL": topology.url, "HOST": "local"})
    home = tmp_path / "home"
    home.mkdir()
    rehearsing = Instance(topology, docker_client, shell, home)
    try:
        yield rehearsing
    finally:
        _restore(rehearsing, specs_before)
        alert = getattr(request.node.function, "rehearses", request.node.name)
        what = (request.node.function.__doc__ or "").strip().splitlines()[0]
        seconds = time.monotonic() - started
        request.config.stash[REHEARSALS].append((alert, what, seconds))
        print(f"rehearsal {alert}: {seconds:.1f}s")


def _rehearses(alert: str) -> Callable[[Rehearsal], Rehearsal]:
    """Marks a rehearsal with its alert (checked: every alert has exactly one)."""

    def mark(function: Rehearsal) -> Rehearsal:
        function.rehearses = alert  # type: ignore[attr-defined]
        marked: Rehearsal = pytest.mark.docker(function)
        return marked

    return mark


# --- the rehearsals, one per alert ----------------------------------------------------


@_rehearses("JobSearchApiDown")
def test_api_down(instance: Instance) -> None:
    """The proxy stopped: /health unreachable; diagnose says refused, the swarm 0 proxies;
    `docker service scale` from the runbook brings it back."""
    alert = "JobSearchApiDown"
    assert alert in instance.fault("proxy", "stop")
    reason = wait_for(alert, lambda: api_check_fails(instance.url, "health"))
    assert "ConnectError" in reason

    found = instance.diagnose(alert)
    assert "connection refused" in found.output_of("ops diagnose"), found
    services = found.output_of("docker service ls")
    assert re.search(rf"{instance.service_name('proxy')}\s+replicated\s+0/0", services), found

    instance.mitigate(alert, "docker service scale", "proxy")
    wait_until_clear(alert, lambda: api_check_fails(instance.url, "health"))


@_rehearses("JobSearchApiNotReady")
def test_api_not_ready(instance: Instance) -> None:
    """Both API keys removed from the running service by hand: /ready 503; diagnose says no
    source is configured and the service mounts no key; the runbook's rollback restores it."""
    alert = "JobSearchApiNotReady"
    api = instance.service_name("api")
    spec = instance.client.services.get(api).attrs["Spec"]
    mounted = spec["TaskTemplate"]["ContainerSpec"].get("Secrets") or []
    keys = [s["SecretName"] for s in mounted if s["File"]["Name"].endswith("_API_KEY")]
    assert len(keys) == 2, mounted
    docker_cli("service", "update", "--detach", *[f"--secret-rm={k}" for k in keys], api)
    wait_for(alert, lambda: api_check_fails(instance.url, "ready"), timeout=120)

    found = instance.diagnose(alert)
    diagnosis = found.output_of("ops diagnose")
    assert "no job source configured" in diagnosis, found
    assert "RAPID_API_KEY is not set" in diagnosis, found
    assert '"configured":false' in found.output_of("curl").replace(" ", ""), found
    files = [Path(mounted).name for mounted in found.output_of("docker service inspect").split()]
    assert "DATABASE_URL" in files, found
    assert "RAPID_API_KEY" not in files, found
    assert "THEIRSTACK_API_KEY" not in files, found

    instance.mitigate(alert, "docker service rollback")
    wait_until_clear(alert, lambda: api_check_fails(instance.url, "ready"), timeout=120)


@_rehearses("JobSearchApiDegraded")
def test_api_degraded(instance: Instance) -> None:
    """Redis stopped: /ready degraded; diagnose names the rate-limit store, the swarm shows
    Redis at 0/0; the runbook's `docker service scale` brings it back."""
    alert = "JobSearchApiDegraded"
    assert alert in instance.fault("redis", "stop")
    wait_for(alert, lambda: api_check_fails(instance.url, "ready_body"))
    assert search(instance.url).status_code == 200, "searches still work, degraded"

    found = instance.diagnose(alert)
    assert "rate-limit store (Redis) down" in found.output_of("ops diagnose"), found
    assert '"rate_limit_store":{"status":"down"' in found.output_of("curl").replace(" ", "")
    redis_tasks = found.output_of("docker service ls")
    assert re.search(rf"{instance.service_name('redis')}\s+replicated\s+0/0", redis_tasks)

    instance.mitigate(alert, "docker service scale", "redis")
    wait_until_clear(alert, lambda: api_check_fails(instance.url, "ready_body"))


@_rehearses("JobSearchTlsCertificateExpiring")
def test_tls_certificate_expiring(instance: Instance, tmp_path: Path) -> None:
    """A Caddy from the proxy image serving a certificate 10 days from expiry: the SSL
    monitor's reading is under 14 days and `ops diagnose` says renewal is failing; a
    renewed certificate, once Caddy restarts on it, clears it."""
    alert = "JobSearchTlsCertificateExpiring"
    authority = rehearsal.CertificateAuthority.create()
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "ca.pem").write_bytes(authority.pem())

    def install(days: float) -> None:
        certificate, key = authority.issue("localhost", days)
        (certs / "cert.pem").write_bytes(certificate)
        (certs / "key.pem").write_bytes(key)
        for name in ("cert.pem", "key.pem"):
            (certs / name).chmod(0o644)  # a throwaway key, read by Caddy's user

    install(days=10)
    port = free_port()
    (certs / "Caddyfile").write_text(
        "{\n\tadmin off\n\tauto_https disable_redirects\n}\n"
        "https://localhost:8443 {\n\ttls /rehearsal/cert.pem /rehearsal/key.pem\n"
        "\treverse_proxy api:8000\n}\n"
    )
    network = instance.topology.description.network.name
    caddy = instance.client.containers.run(
        instance.topology.images.runtime.proxy,
        command=["caddy", "run", "--config", "/rehearsal/Caddyfile", "--adapter", "caddyfile"],
        name=f"{instance.topology.description.prefix}-rehearsal-tls",
        labels={"org.jobsearch.project": "jobsearch", "org.jobsearch.environment": STACK},
        environment={"XDG_CONFIG_HOME": "/tmp", "XDG_DATA_HOME": "/tmp"},
        volumes={str(certs): {"bind": "/rehearsal", "mode": "ro"}},
        ports={"8443/tcp": ("127.0.0.1", port)},
        network=network,
        user=PROXY_UID,
        read_only=True,
        tmpfs={"/tmp": "rw,size=16m"},
        detach=True,
    )
    try:
        url = f"https://localhost:{port}"

        def days_served() -> float:
            """The SSL monitor's reading, once Caddy answers (it is starting)."""
            deadline = time.monotonic() + 60
            while True:
                try:
                    return rehearsal.days_left("127.0.0.1", port, "localhost")
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)

        assert days_served() < CERTIFICATE_DAYS

        shell = instance.shell.with_variables(URL=url, SSL_CERT_FILE=str(certs / "ca.pem"))
        found = instance.diagnose(alert, shell)
        assert "renewal is failing" in found.output_of("ops diagnose"), found

        install(days=90)  # what a successful renewal gives; Caddy serves it once restarted
        caddy.restart(timeout=10)
        assert days_served() > CERTIFICATE_DAYS
        assert "valid, 90 days left" in shell.run(f'ops diagnose --url "{url}"').output
    finally:
        caddy.remove(force=True)


@_rehearses("JobSearchUpstreamQuotaLow")
def test_upstream_quota_low(instance: Instance) -> None:
    """JSearch's quota header low: /ready's quota turns low as searches see it; diagnose
    names the source and what is left; a renewed plan (the stand-in healthy) clears it."""
    alert = "JobSearchUpstreamQuotaLow"
    assert alert in instance.fault("jsearch", "quota-low")

    def quota_low() -> str | None:
        search(instance.url)  # each process learns the quota from an answer
        return api_check_fails(instance.url, "quota")

    wait_for(alert, quota_low, runs=6)
    for _ in range(20):  # every process has seen an answer: one /ready read tells
        search(instance.url)

    found = instance.diagnose(alert)
    plain = next(r for r in found.ran if r.line == 'ops diagnose --url "$URL"')
    left = re.search(r"source jsearch: circuit \w+, (\d+) left", plain.output)
    assert left is not None, found
    assert int(left.group(1)) < 50
    report = json.loads(found.output_of("ops diagnose", "--json"))
    by_name = {check["name"]: check for check in report["checks"]}
    assert by_name["source jsearch"]["data"]["quota_remaining"] < 50

    instance.fault("jsearch", "healthy")

    def quota_ok() -> str | None:
        search(instance.url)
        return api_check_fails(instance.url, "quota")

    wait_until_clear(alert, quota_ok, runs=6)


@_rehearses("JobSearchUpstreamBudgetExhausted")
def test_upstream_budget_exhausted(instance: Instance) -> None:
    """A daily budget of 1 JSearch call, spent: /ready's budget exhausted, searches 503;
    diagnose names the source; the budget lifted (the runbook's deploy, here a service
    update) clears it."""
    alert = "JobSearchUpstreamBudgetExhausted"
    api = instance.service_name("api")
    docker_cli("service", "update", "--detach", "--env-add", "JSEARCH_DAILY_BUDGET=1", api)

    def spent() -> str | None:
        search(instance.url)
        return api_check_fails(instance.url, "budget")

    wait_for(alert, spent, runs=6, timeout=120)

    def refused() -> str | None:  # once no replica of before the update answers
        answer = search(instance.url)
        return answer.json()["error"]["code"] if answer.status_code == 503 else None

    assert wait_for("a search refused", refused, runs=2, timeout=60) == "budget_exhausted"

    found = instance.diagnose(alert)
    assert "daily budget of paid calls spent (jsearch)" in found.output_of("ops diagnose")
    assert '"status":"exhausted"' in found.output_of("curl", "/ready").replace(" ", "")

    # The budget raised, to no limit at all here: the spec the stack deployed again.
    docker_cli("service", "update", "--detach", "--env-rm", "JSEARCH_DAILY_BUDGET", api)

    def rolled_out() -> str | None:
        service = instance.client.services.get(api)
        wanted = service.attrs["Spec"]["Mode"]["Replicated"]["Replicas"]
        envs = [
            task["Spec"]["ContainerSpec"].get("Env") or []
            for task in service.tasks(filters={"desired-state": "running"})
        ]
        budgets = [env for env in envs if any(e.startswith("JSEARCH_DAILY_BUDGET=") for e in env)]
        return "replaced" if len(envs) >= wanted and not budgets else None

    # Until the engine has replaced every replica, one still holding the spent budget
    # may answer, and the alert would flap rather than clear.
    wait_for("the budget's removal rolled out", rolled_out, runs=1, timeout=180)

    def still_refused() -> str | None:
        answer = search(instance.url)
        if answer.status_code != 200:
            return f"search {answer.status_code}: {answer.text[:200]}"
        return api_check_fails(instance.url, "budget")

    wait_until_clear(alert, still_refused, runs=4, timeout=60)


@_rehearses("JobSearchReplicasMissing")
def test_replicas_missing(instance: Instance) -> None:
    """Redis's node lost (its placement matches no node): the managers' heartbeat script
    stops pinging; the swarm shows 0/1 and why; the node back, the pings resume."""
    alert = "JobSearchReplicasMissing"
    redis = instance.service_name("redis")
    lost = "node.labels.jobsearch.rehearsal==lost"
    with rehearsal.heartbeat_receiver() as (ping_url, pings):

        def silent() -> str | None:
            pinged = rehearsal.heartbeat_pings(instance.home, STACK, ping_url, pings)
            return None if pinged else "no ping"

        assert silent() is None, "the whole stack pings"
        docker_cli("service", "update", "--detach", "--constraint-add", lost, redis)
        wait_for(alert, silent, runs=2, timeout=60)

        found = instance.diagnose(alert)
        services = found.output_of("docker service ls")
        assert re.search(rf"{redis}\s+replicated\s+0/1", services), found
        tasks = found.output_of("docker service ps", "redis")
        assert "no suitable node (scheduling constraints not satisfied" in tasks, found
        assert "Ready" in found.output_of("docker node ls"), found

        docker_cli("service", "update", "--detach", "--constraint-rm", lost, redis)
        wait_until_clear(alert, silent, runs=2, timeout=60)


@_rehearses("JobSearchApiHighErrorRate")
def test_api_high_error_rate(instance: Instance, tmp_path: Path) -> None:
    """An image with a bug rolled out while Sentry (a stand-in) listens: over 20 errors in
    5 minutes; ops status and the logs name the image and the error; the runbook's
    `ops rollback` ends the errors."""
    alert = "JobSearchApiHighErrorRate"
    runner = instance.topology.runner
    prefix = instance.topology.description.prefix
    port = free_port()
    script = tmp_path / "sentry"
    script.mkdir()
    (script / "sentry_ingest.py").write_bytes((HERE / "sentry_ingest.py").read_bytes())
    network = instance.topology.description.network.name
    ingest = instance.client.containers.run(
        instance.topology.images.service,
        entrypoint=["python", "/rehearsal/sentry_ingest.py", "--port", "9000"],
        name=f"{prefix}-rehearsal-sentry",
        labels={"org.jobsearch.project": "jobsearch", "org.jobsearch.environment": STACK},
        volumes={str(script): {"bind": "/rehearsal", "mode": "ro"}},
        ports={"9000/tcp": ("127.0.0.1", port)},
        network=network,
        networking_config={network: instance.client.api.create_endpoint_config(aliases=["sentry"])},
        read_only=True,
        detach=True,
        healthcheck={"test": ["NONE"]},
    )
    keys_before = runner.state.secrets()
    environment = app_env(STACK)

    def errors_in_window() -> int:
        answer = httpx.get(
            f"http://127.0.0.1:{port}/_count",
            params={"environment": environment, "minutes": ERROR_RATE_WINDOW_MINUTES},
            timeout=5,
            trust_env=False,
        )
        count: int = answer.json()["count"]
        return count

    try:
        wait_for("sentry stand-in", lambda: _answers(f"http://127.0.0.1:{port}/_count"), runs=1)
        runner.state.set_api_keys(
            {**_api_keys(keys_before), "SENTRY_DSN": "http://0123456789abcdef@sentry:9000/1"}
        )
        buggy = _buggy_image(instance.client)
        runner.rollout(buggy)
        statuses = [search(instance.url).status_code for _ in range(ERROR_RATE_COUNT + 5)]
        assert statuses.count(500) == len(statuses), statuses

        def above_threshold() -> str | None:
            count = errors_in_window()
            return f"{count} errors" if count > ERROR_RATE_COUNT else None

        wait_for(alert, above_threshold, runs=1, timeout=60)

        found = instance.diagnose(alert)
        assert buggy.split(":")[-1][:12] in found.output_of("ops status"), found
        assert "unhandled_error" in found.output_of("docker service logs"), found

        # The rollback deploys without the stand-in's DSN too (one rollout, not two): the
        # errors' end is then read where they start, in the replicas' logs.
        runner.state.set_api_keys(_api_keys(keys_before))
        since = str(int(time.time()))
        instance.mitigate(alert, "ops rollback")
        statuses = [search(instance.url).status_code for _ in range(5)]
        assert statuses == [200] * 5, statuses
        logs = subprocess.run(
            ["docker", "service", "logs", "--since", since, instance.service_name("api")],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        assert "unhandled_error" not in logs.stdout + logs.stderr
    finally:
        runner.state.set_api_keys(_api_keys(keys_before))
        ingest.remove(force=True)


def _api_keys(stored: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in stored.items() if name.endswith(("_KEY", "_DSN"))}


def _answers(url: str) -> str | None:
    try:
        httpx.get(url, timeout=2, trust_env=False)
    except httpx.HTTPError:
        return None
    return "answers"


# Appended to jobsearch/search.py: its `render` now fails every search the cache cannot answer.
BUG = b"""

def render(response):
    raise RuntimeError("a bug shipped in this image (runbook rehearsal)")
"""


def _buggy_image(client: docker.DockerClient) -> str:
    """The service image with a bug. (Its bytecode is compiled unchecked: the changed module
    is compiled again.)"""
    dockerfile = (
        f"FROM {SERVICE_TAG}\nUSER 0\nCOPY bug.py /tmp/bug.py\n"
        "RUN cat /tmp/bug.py >> /app/jobsearch/search.py && rm /tmp/bug.py \\\n"
        "    && /opt/venv/bin/python -m compileall -q --invalidation-mode unchecked-hash "
        "/app/jobsearch/search.py\nUSER 10001:10001\n"
    )
    return build_from_files(
        client, dockerfile, "jobsearch-api:rehearsal-bug", files={"bug.py": BUG}
    )


# --- what keeps the rehearsals complete and their tools honest (no Docker) ------------


def test_every_alert_is_rehearsed() -> None:
    rehearsed = [
        value.rehearses
        for value in globals().values()
        if callable(value) and hasattr(value, "rehearses")
    ]
    assert sorted(rehearsed) == sorted(alert.name for alert in ALERTS)


def test_the_ssh_stand_in_runs_the_remote_command_as_sshd_would(tmp_path: Path) -> None:
    shell = RunbookShell(tmp_path / "bin", {"STACK": "prod"})
    joined = shell.run("ssh deploy@host echo \"jobsearch-$STACK-api\" '{{.A}} {{.B}}'")
    assert joined.output == "jobsearch-prod-api {{.A}} {{.B}}\n"
    # Quoted locally, split again by the remote shell: what breaks on the host breaks here.
    split = shell.run("ssh -i key deploy@host printf '%s,' '{{range .X}} {{end}}'")
    assert split.output == "{{range,.X}},{{end}},"
    assert shell.run("ssh deploy@host").exit_code == 255


def test_lines_that_need_a_real_stack_are_named_and_skipped(tmp_path: Path) -> None:
    shell = RunbookShell(tmp_path / "bin", {"STACK": "prod", "URL": "http://127.0.0.1:9"})
    found = shell.run_section("JobSearchApiDegraded")
    skipped = dict(found.skipped)
    assert any("pulumi config get" in line for line in skipped)
    assert skipped["ops diagnose --database"] == rehearsal.ELSEWHERE["--database"]
    assert all(rehearsal.needs_elsewhere(r.line) is None for r in found.ran)
    assert found.ran, "some lines run here"


def test_the_checkly_reader_applies_the_probes_assertions(run_service: Any, fakes: Any) -> None:
    with run_service() as url:
        assert api_check_fails(url, "health") is None
        assert api_check_fails(url, "ready_body") is None
        assert api_check_fails(url, "budget") is None
        fakes.jsearch.default = "quota"  # an answer saying 0 left
        search(url)
        reason = api_check_fails(url, "quota")
    assert reason is not None
    assert "$.checks.quota.status fails EQUALS 'ok'" in reason
    assert api_check_fails("http://127.0.0.1:9", "health") is not None


def test_the_sentry_stand_in_counts_error_events_of_an_envelope() -> None:
    from sentry_sdk.envelope import Envelope, Item

    from tests.runbooks.sentry_ingest import error_events

    envelope = Envelope(headers={"event_id": "1"})
    envelope.add_event({"level": "error", "environment": "development"})
    envelope.add_item(Item(payload=b'{"sid": "x"}', type="session"))
    envelope.add_event({"level": "warning", "environment": "development"})
    buffer = io.BytesIO()
    envelope.serialize_into(buffer)
    assert [event["level"] for event in error_events(buffer.getvalue())] == ["error"]
