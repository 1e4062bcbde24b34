"""A stand-in for Sentry's ingest, for the JobSearchApiHighErrorRate rehearsal.

Sentry cannot be reached from here. The service's SDK sends each error event in
an envelope (POST /api/<project>/envelope/, gzip as the SDK compresses it); this
server counts the error events per environment with their arrival time, and
answers GET /_count?environment=E&minutes=M with how many came in the last M
minutes: what the metric alert of infra/components/monitoring.py counts
(dataset events, event type error, count(), over its window).

Run inside the rehearsal's container: python sentry_ingest.py --port 9000.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# (arrival time, environment, level) of each error event received.
EVENTS: list[tuple[float, str, str]] = []


def error_events(body: bytes) -> list[dict[str, Any]]:
    """The error events of an envelope: a header line, then items, each a header line and
    a payload (of the header's length, else up to the next newline)."""
    events = []
    _, _, rest = body.partition(b"\n")
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        if not line.strip():
            continue
        header = json.loads(line)
        length = header.get("length")
        if length is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            payload, rest = rest[:length], rest[length + 1 :]
        if header.get("type") == "event":
            event = json.loads(payload)
            if event.get("level", "error") in ("error", "fatal"):
                events.append(event)
    return events


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        encoding = self.headers.get("content-encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        if self.path.rstrip("/").endswith("/envelope"):
            for event in error_events(body):
                EVENTS.append((time.time(), str(event.get("environment")), str(event.get("level"))))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        environment = query.get("environment", [""])[0]
        since = time.time() - 60 * float(query.get("minutes", ["5"])[0])
        count = sum(1 for at, env, _ in EVENTS if at >= since and env == environment)
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"count": count, "received": len(EVENTS)}).encode())

    def log_message(self, format: str, *args: Any) -> None:
        return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args()
    ThreadingHTTPServer(("0.0.0.0", args.port), Handler).serve_forever()  # noqa: S104


if __name__ == "__main__":
    main()
