"""The anon checks (tests/smoke/anon_checks.py) against a local PostgREST stand-in.

It answers as PostgREST does for the anon role: row-level security on and no
policy (SELECT: 200 `[]`; INSERT: 401, 42501, "new row violates row-level
security policy"), no grant at all (401, 42501, "permission denied"), and, to
prove the checks can fail, a leaky table that hands out rows and takes inserts.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from tests.smoke.anon_checks import anon_client, check_anon_cannot_read, check_anon_cannot_write

# A JWT's shape, as Supabase's anon keys have (the client checks the shape).
ANON_KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c3RhbmQtaW4tc2lnbmF0dXJl"
ROW = {"source": "jsearch", "request_hash": "ab" * 32, "request": {}, "response": {}}


def _error(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "details": None, "hint": None, "message": message}


ANSWERS: dict[str, dict[str, tuple[int, Any]]] = {
    "rls": {
        "GET": (200, []),
        "POST": (
            401,
            _error("42501", 'new row violates row-level security policy for table "job_cache"'),
        ),
    },
    "no-grant": {
        "GET": (401, _error("42501", "permission denied for table job_cache")),
        "POST": (401, _error("42501", "permission denied for table job_cache")),
    },
    "leaky": {"GET": (200, [ROW]), "POST": (201, None)},
    "missing-column": {
        "GET": (200, []),
        "POST": (400, _error("PGRST204", "Could not find the 'x' column of 'job_cache'")),
    },
}


class PostgRest(BaseHTTPRequestHandler):
    mode: ClassVar[str] = "rls"
    seen: ClassVar[list[tuple[str, str, str]]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.seen.append((self.command, self.path, self.headers.get("apikey", "")))
        if not self.path.startswith("/rest/v1/job_cache"):
            status, body = 404, _error("PGRST205", "no such table")
        else:
            status, body = ANSWERS[self.mode][self.command]
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def stand_in() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), PostgRest)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("mode", ["rls", "no-grant"])
def test_the_checks_pass_where_postgrest_denies_anon(stand_in: str, mode: str) -> None:
    PostgRest.mode = mode
    PostgRest.seen.clear()
    client = anon_client(stand_in, ANON_KEY)

    check_anon_cannot_read(client)
    check_anon_cannot_write(client)

    assert [(method, path.partition("?")[0]) for method, path, _ in PostgRest.seen] == [
        ("GET", "/rest/v1/job_cache"),
        ("POST", "/rest/v1/job_cache"),
    ]
    assert {key for *_, key in PostgRest.seen} == {ANON_KEY}, "with the anon key"


def test_the_checks_fail_where_anon_reads_or_writes(stand_in: str) -> None:
    PostgRest.mode = "leaky"
    client = anon_client(stand_in, ANON_KEY)

    with pytest.raises(AssertionError, match="anon read 1 row"):
        check_anon_cannot_read(client)
    with pytest.raises(AssertionError, match="anon wrote a row"):
        check_anon_cannot_write(client)


def test_a_write_refused_for_another_reason_is_no_proof(stand_in: str) -> None:
    PostgRest.mode = "missing-column"
    client = anon_client(stand_in, ANON_KEY)

    with pytest.raises(AssertionError, match="not as refused"):
        check_anon_cannot_write(client)
