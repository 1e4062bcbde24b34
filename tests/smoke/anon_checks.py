"""What the Supabase project's public anon key reaches: job_cache, neither read nor written.

The anon key ships in every browser that talks to Supabase, so it is public.
What "cannot read" honestly means through PostgREST: no row comes back. With
row-level security on and no policy for anon, a SELECT answers 200 with `[]`
(PostgREST filters rows, it does not refuse); without a grant it answers 401
with code 42501. Both pass; any row fails. (An empty table also answers `[]`:
the read check proves anon sees no row, not that a row exists.) "Cannot write"
is stricter: the INSERT must be refused with 42501 (permission denied, or "new
row violates row-level security policy"), never accepted.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from postgrest.exceptions import APIError
from postgrest.types import ReturnMethod
from supabase import Client, create_client

TABLE = "job_cache"
DENIED = "42501"  # insufficient_privilege: no grant, or a row-level security policy


def anon_client(url: str, anon_key: str) -> Client:
    return create_client(url, anon_key)


def check_anon_cannot_read(client: Client) -> None:
    refused: APIError | None = None
    rows: Any = []
    try:
        rows = client.table(TABLE).select("*").limit(5).execute().data
    except APIError as error:
        refused = error
    if refused is not None:
        assert refused.code == DENIED, f"anon's read of {TABLE} failed oddly: {refused}"
    assert rows == [], f"anon read {len(rows)} row(s) of {TABLE} with the public key"


def check_anon_cannot_write(client: Client) -> None:
    now = datetime.now(UTC)
    row = {
        "source": "jsearch",
        "request_hash": "0" * 64,
        "request": {"smoke": "anon write probe"},
        "response": {"jobs": []},
        "expires_at": (now + timedelta(minutes=1)).isoformat(),
    }
    refused: APIError | None = None
    try:
        client.table(TABLE).insert(row, returning=ReturnMethod.minimal).execute()
    except APIError as error:
        refused = error
    assert refused is not None, f"anon wrote a row to {TABLE} with the public key"
    assert refused.code == DENIED, f"anon's write to {TABLE} failed, but not as refused: {refused}"
