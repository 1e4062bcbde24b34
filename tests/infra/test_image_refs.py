"""The one digest rule, and its command-line form the workflows run."""

from __future__ import annotations

import subprocess
import sys

import pytest

from infra.image_refs import NotPinned, is_pinned, require_pinned
from tests.infra.pulumi.stack_config import ROOT

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("ref", "pinned"),
    [
        (f"ghcr.io/acme/jobsearch-api@{DIGEST}", True),
        (f"registry.example.com:5000/a/b:1.2@{DIGEST}", True),
        (f"caddy@{DIGEST}", True),
        ("caddy:2", False),
        (f"ghcr.io/acme//api@{DIGEST}", False),
        (f"GHCR.io/Acme/api@{DIGEST}", False),
        ("caddy@sha256:short", False),
        (DIGEST, False),
    ],
)
def test_what_counts_as_pinned(ref: str, pinned: bool) -> None:
    assert is_pinned(ref) is pinned


def test_a_bare_digest_counts_only_where_asked() -> None:
    assert is_pinned(DIGEST, bare_digest=True)
    assert require_pinned(f" {DIGEST} ", bare_digest=True) == DIGEST
    with pytest.raises(NotPinned, match="give sha256:<64 hex> or REGISTRY/OWNER/NAME"):
        require_pinned("latest", bare_digest=True)


@pytest.mark.parametrize(("ref", "code"), [(f"caddy@{DIGEST}", 0), ("caddy:2", 1)])
def test_the_check_command_runs_on_the_standard_library(ref: str, code: int) -> None:
    # -S: no site-packages, as the runner's own python3 before `make install`.
    completed = subprocess.run(
        [sys.executable, "-S", "-m", "infra.image_refs", "check", ref],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert completed.returncode == code, completed.stderr
    if code:
        assert completed.stderr.startswith("::error::'caddy:2' is not an image pinned by digest")
