"""The floor to compare against: a bare FastAPI endpoint returning a fixed search result.

No validation beyond parsing the JSON body, no cache, no middleware, no logs:
what any FastAPI app pays to answer this request. It is served exactly as
`jobsearch-api` serves the service (same uvicorn options, same worker count).

It imports only FastAPI and the service's server module (uvicorn's options): the footprint
benchmark also runs it inside the service image, mounted read-only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from jobsearch.server import serve

# Set by the cache-hit benchmark to the service's own cached answer, so that
# both return the same JSON.
PAYLOAD_VARIABLE = "BENCH_PAYLOAD_FILE"
_DEFAULT_PAYLOAD: dict[str, Any] = {"jobs": [], "total": 0}


def _payload() -> dict[str, Any]:
    path = os.environ.get(PAYLOAD_VARIABLE)
    if not path:
        return _DEFAULT_PAYLOAD
    loaded: dict[str, Any] = json.loads(Path(path).read_text())
    return loaded


def create_app() -> FastAPI:
    payload = _payload()
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "healthy"}

    @app.post("/api/jobs/jsearch")
    async def search(body: dict[str, Any]) -> JSONResponse:
        return JSONResponse(payload)

    return app


def serve_baseline(app_factory: str) -> None:
    """A baseline app served as `jobsearch-api` serves the service, from HOST, PORT, WORKERS."""
    serve(
        app_factory,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8000")),
        workers=int(os.environ.get("WORKERS", "1")),
        forwarded_allow_ips="127.0.0.1",
    )


def main() -> None:
    # Inside the footprint's container this file runs as a plain script, not from bench/.
    serve_baseline(
        "bare_app:create_app" if __package__ in (None, "") else "bench.bare_app:create_app"
    )


if __name__ == "__main__":
    main()
