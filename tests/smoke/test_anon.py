"""After a deploy: the Supabase project's public anon key neither reads nor writes job_cache.

Needs SUPABASE_URL and SUPABASE_ANON_KEY (secrets of the stack's GitHub
environment; the deploy workflow passes them). Without them it skips; in the
normal suite the same checks run against a PostgREST stand-in
(tests/smoke/test_anon_checks.py).
"""

from __future__ import annotations

import os

import pytest
from supabase import Client

from tests.smoke.anon_checks import anon_client, check_anon_cannot_read, check_anon_cannot_write

REQUIRED = ("SUPABASE_URL", "SUPABASE_ANON_KEY")


@pytest.fixture(scope="module")
def client() -> Client:
    missing = [name for name in REQUIRED if not os.environ.get(name)]
    if len(missing) == len(REQUIRED):
        pytest.skip("no Supabase project to check (SUPABASE_URL is unset)")
    assert not missing, f"set {', '.join(missing)} too"
    return anon_client(os.environ["SUPABASE_URL"], os.environ["SUPABASE_ANON_KEY"])


def test_anon_cannot_read_the_cache(client: Client) -> None:
    check_anon_cannot_read(client)


def test_anon_cannot_write_the_cache(client: Client) -> None:
    check_anon_cannot_write(client)
