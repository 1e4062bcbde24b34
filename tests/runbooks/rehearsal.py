"""What a runbook rehearsal needs: the runbook's own commands run here, and each alert's
condition read the way its monitor reads it.

- `RunbookShell` runs the lines of a runbook's ```sh blocks in a real `sh`, with
  STACK, URL and HOST pointed at the test instance. `ssh` is a stand-in that runs
  the remote command on this machine the way sshd runs it on the host: the
  arguments after the destination joined by spaces and read by a shell (so a
  quoting mistake that would break on the host breaks here too). Lines that need
  what only a real stack has (the Pulumi CLI, its DNS, its database login) are
  skipped, each with the reason.
- `api_check_fails` is a Checkly API check of infra/components/monitoring.py
  (its path, no redirects, its assertions, its maximum response time);
  `days_left` reads a certificate as Checkly's SSL monitor does;
  `heartbeat_pings` runs the replicas heartbeat script of
  infra/components/replica_watch.py against a stand-in for Checkly's ping URL.
"""

from __future__ import annotations

import datetime
import os
import re
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from infra.alerts import HTTP_PROBES, Probe
from infra.components.replica_watch import heartbeat_script, watch_name
from tests.runbooks.checks import ROOT, RUNBOOKS
from tests.runbooks.shell import blocks, commands

VENV_BIN = ROOT / ".venv" / "bin"
# Checkly's API checks give up after max_response_time (monitoring.py, 10000 ms).
CHECK_TIMEOUT_SECONDS = 10.0
COMMAND_TIMEOUT_SECONDS = 180.0

SSH_STANDIN = """#!/bin/sh
# Stand-in for ssh: runs the remote command on this machine as sshd runs it on the
# host, the arguments after the destination joined by spaces and read by a shell.
while [ $# -gt 0 ]; do
  case "$1" in
    -i|-p|-o|-l|-F|-J) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
if [ $# -lt 2 ]; then echo "ssh stand-in: no remote command" >&2; exit 255; fi
shift
exec sh -c "$*"
"""

# What only a real stack has, by the command (or option) that needs it.
ELSEWHERE = {
    "pulumi": "needs the Pulumi CLI and the stack's state (none here)",
    "dig": "asks the stack's public DNS",
    "supabase": "inspects the stack's database (tests/runbooks/test_database_commands.py)",
    "psql": "reads the stack's database (tests/runbooks/test_database_commands.py)",
    "--database": "reads DATABASE_URL from the stack's config (pulumi)",
}


def section(markdown: str, heading: str) -> str:
    start = markdown.index(heading + "\n") + len(heading) + 1
    following = re.search(r"^## ", markdown[start:], re.MULTILINE)
    return markdown[start : start + following.start()] if following else markdown[start:]


def runbook_lines(alert: str, heading: str) -> list[str]:
    """The shell lines of a runbook section's ```sh blocks, continuations joined."""
    text = (RUNBOOKS / f"{alert}.md").read_text()
    lines = []
    for block in blocks(section(text, heading)):
        if block.lang != "sh":
            continue
        for raw in block.body.replace("\\\n", " ").splitlines():
            if raw.strip() and not raw.lstrip().startswith("#"):
                lines.append(" ".join(raw.split()))
    return lines


def runbook_line(alert: str, heading: str, *needles: str) -> str:
    """The one line of the section holding every needle: what the rehearsal runs."""
    found = [line for line in runbook_lines(alert, heading) if all(n in line for n in needles)]
    assert len(found) == 1, f"{alert}.md {heading}: {len(found)} lines with {needles}: {found}"
    return found[0]


def needs_elsewhere(line: str) -> str | None:
    for command in commands(line):
        reason = ELSEWHERE.get(command.name)
        if reason is None:
            reason = next((ELSEWHERE[a] for a in command.argv if a in ELSEWHERE), None)
        if reason is not None:
            return reason
    return None


@dataclass(frozen=True)
class Ran:
    line: str
    exit_code: int
    output: str


@dataclass
class Transcript:
    ran: list[Ran] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def output_of(self, *needles: str) -> str:
        """What the one line run holding every needle printed."""
        found = [r for r in self.ran if all(needle in r.line for needle in needles)]
        assert len(found) == 1, f"{len(found)} lines run with {needles}: {self.ran}"
        return found[0].output

    def __str__(self) -> str:
        shown = [f"$ {r.line}\n(exit {r.exit_code})\n{r.output}" for r in self.ran]
        shown += [f"skipped: {line} ({reason})" for line, reason in self.skipped]
        return "\n".join(shown)


class RunbookShell:
    """Runs runbook lines here, against the test instance."""

    def __init__(self, bin_dir: Path, variables: Mapping[str, str]) -> None:
        bin_dir.mkdir(parents=True, exist_ok=True)
        ssh = bin_dir / "ssh"
        ssh.write_text(SSH_STANDIN)
        ssh.chmod(0o755)
        self.env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
            **variables,
        }

    def with_variables(self, **variables: str) -> RunbookShell:
        shell = RunbookShell.__new__(RunbookShell)
        shell.env = {**self.env, **variables}
        return shell

    def run(self, line: str) -> Ran:
        done = subprocess.run(
            ["sh", "-c", line],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )
        return Ran(line, done.returncode, done.stdout)

    def run_section(self, alert: str, heading: str = "## Diagnosis") -> Transcript:
        transcript = Transcript()
        for line in runbook_lines(alert, heading):
            reason = needs_elsewhere(line)
            if reason is None:
                transcript.ran.append(self.run(line))
            else:
                transcript.skipped.append((line, reason))
        return transcript


# --- the monitors ------------------------------------------------------------


def api_check_fails(url: str, probe: Probe) -> str | None:
    """Why the Checkly API check of `probe` fails against `url` now; None when it passes."""
    spec = HTTP_PROBES[probe]
    started = time.monotonic()
    try:
        response = httpx.get(
            url + spec.path, timeout=CHECK_TIMEOUT_SECONDS, follow_redirects=False, trust_env=False
        )
    except httpx.HTTPError as error:
        return f"GET {spec.path}: {type(error).__name__}: {error}"
    if time.monotonic() - started > CHECK_TIMEOUT_SECONDS:
        return f"GET {spec.path}: slower than {CHECK_TIMEOUT_SECONDS:g}s"
    try:
        body = response.json()
    except ValueError:
        body = None
    for assertion in spec.assertions:
        if not assertion.holds(response.status_code, body):
            where = f"{assertion.source} {assertion.property}".strip()
            return (
                f"GET {spec.path} {response.status_code}: {where} fails "
                f"{assertion.comparison} {assertion.target!r}: {response.text[:300]}"
            )
    return None


def wait_for(
    what: str, condition: Callable[[], str | None], *, runs: int = 3, timeout: float = 90
) -> str:
    """Poll until `condition` gives a reason `runs` times in a row (as an alert waits for
    failed runs); returns the last reason."""
    deadline = time.monotonic() + timeout
    streak: list[str] = []
    while True:
        reason = condition()
        streak = [*streak, reason] if reason is not None else []
        if len(streak) >= runs:
            return streak[-1]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not {runs} times in a row within {timeout:g}s")
        time.sleep(0.5)


def wait_until_clear(
    what: str, condition: Callable[[], str | None], *, runs: int = 3, timeout: float = 90
) -> None:
    """Poll until `condition` gives no reason `runs` times in a row."""
    last: list[str | None] = [None]

    def cleared() -> str | None:
        reason = condition()
        last[0] = reason
        return "clear" if reason is None else None

    try:
        wait_for(what, cleared, runs=runs, timeout=timeout)
    except AssertionError:
        raise AssertionError(f"{what} still holds after {timeout:g}s: {last[0]}") from None


def days_left(host: str, port: int, server_name: str) -> float:
    """Days until the certificate served at host:port expires, read as Checkly's SSL
    monitor reads it: the leaf's notAfter, whether or not it is trusted."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((host, port), timeout=CHECK_TIMEOUT_SECONDS) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der, f"{host}:{port} sent no certificate"
    not_after = x509.load_der_x509_certificate(der).not_valid_after_utc
    return (not_after - datetime.datetime.now(datetime.UTC)).total_seconds() / 86400


@dataclass(frozen=True)
class CertificateAuthority:
    """A private CA that issues the rehearsal's certificates, with the lifetime asked for."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @classmethod
    def create(cls) -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jobsearch rehearsal CA")])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(self, host: str, days: float) -> tuple[bytes, bytes]:
        """A certificate for `host` valid `days` from now, and its key, as PEM."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return certificate.public_bytes(serialization.Encoding.PEM), key_pem


class _Pings:
    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()


@contextmanager
def heartbeat_receiver() -> Iterator[tuple[str, _Pings]]:
    """A stand-in for Checkly's heartbeat ping URL, counting pings."""
    pings = _Pings()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with pings.lock:
                pings.count += 1
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/ping-token", pings
    finally:
        server.shutdown()
        server.server_close()


def heartbeat_pings(home: Path, environment: str, ping_url: str, pings: _Pings) -> bool:
    """Run the manager's heartbeat script once, as cron does; whether it pinged."""
    (home / ".config").mkdir(parents=True, exist_ok=True)
    (home / ".config" / f"{watch_name(environment)}.url").write_text(ping_url + "\n")
    script = home / watch_name(environment)
    script.write_text(heartbeat_script(environment))
    script.chmod(0o700)
    before = pings.count
    done = subprocess.run(
        [str(script)],
        env={**os.environ, "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"the heartbeat script failed: {done.stderr}"
    return pings.count > before
