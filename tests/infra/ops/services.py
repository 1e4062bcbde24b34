"""The service as its own process (its own metrics), and ASGI apps served over TLS."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.types import ASGIApp

from harness.postgres import service_login_url
from harness.processes import run_service_process
from harness.servers import serve_in_thread
from infra.standins import JSEARCH_KEY, THEIRSTACK_KEY


@contextlib.contextmanager
def service_process(
    migrated_database: str, fakes_url: str, log_path: Path, **settings: str
) -> Iterator[str]:
    """`jobsearch-api` with one worker, pointed at the fake upstreams and a real cache."""
    env = {
        "RAPID_API_KEY": JSEARCH_KEY,
        "THEIRSTACK_API_KEY": THEIRSTACK_KEY,
        "JSEARCH_BASE_URL": fakes_url,
        "THEIRSTACK_BASE_URL": fakes_url,
        "DATABASE_URL": service_login_url(migrated_database, empty_cache=True),
        "UPSTREAM_TIMEOUT_SECONDS": "1",
        "RATE_LIMIT": "1000/minute",
        "WORKERS": "1",
        **settings,
    }
    with run_service_process(env, log_path=log_path) as (url, _process):
        yield url


@dataclass(frozen=True)
class Certificates:
    ca: Path
    certificate: Path
    key: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_certificates(directory: Path, *, days: int) -> Certificates:
    """A private CA and a server certificate for 127.0.0.1 valid for `days` days."""
    if shutil.which("openssl") is None:
        # Failed, not skipped: a skip would let the certificate checks vanish from CI.
        pytest.fail("the openssl command is needed to make test certificates (apt install openssl)")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    _openssl("req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca), "-days", "365",
             "-subj", "/CN=jobsearch test CA")  # fmt: skip
    key, request = directory / "server.key", directory / "server.csr"
    _openssl("req", *ec, "-keyout", str(key), "-out", str(request), "-subj", "/CN=127.0.0.1")
    extensions = directory / "san.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1\n")
    certificate = directory / "server.pem"
    _openssl("x509", "-req", "-in", str(request), "-CA", str(ca), "-CAkey", str(ca_key),
             "-CAcreateserial", "-out", str(certificate), "-days", str(days),
             "-extfile", str(extensions))  # fmt: skip
    return Certificates(ca=ca, certificate=certificate, key=key)


@contextlib.contextmanager
def serve_tls(app: ASGIApp, certificates: Certificates) -> Iterator[str]:
    with serve_in_thread(app, tls=(certificates.certificate, certificates.key)) as url:
        yield url
