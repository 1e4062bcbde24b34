"""Baseline, not shipped: the search endpoint written the way the old app was.

The old app called the paid APIs with the blocking `requests` library from
inside `async def` handlers. Each call then holds the worker's event loop for
the whole upstream round trip: nothing else on that worker, not even /health,
is answered meanwhile. Its Supabase cache is left out here; it was blocking
too, so it could only make this baseline slower.

Served with the same uvicorn options and worker count as the service.
"""

from __future__ import annotations

import os
from typing import Any

import requests
from fastapi import FastAPI

from bench.bare_app import serve_baseline

JSEARCH_BASE_URL = os.environ.get("JSEARCH_BASE_URL", "http://127.0.0.1:9100")
RAPID_API_KEY = os.environ.get("RAPID_API_KEY", "")
MAX_JOBS = 15


def create_app() -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "healthy"}

    @app.post("/api/jobs/jsearch")
    async def search(body: dict[str, Any]) -> dict[str, Any]:
        query = str(body.get("jobTitle", ""))
        if body.get("city"):
            query = f"{query} in {body['city']}"
        # The defect being measured: a blocking call inside an async handler.
        answer = requests.get(  # noqa: ASYNC210
            f"{JSEARCH_BASE_URL}/search",
            params={"query": query, "page": "1", "num_pages": "1"},
            headers={"X-RapidAPI-Key": RAPID_API_KEY, "X-RapidAPI-Host": "jsearch.p.rapidapi.com"},
            timeout=30,
        )
        answer.raise_for_status()
        jobs = [
            {
                "id": item["job_id"],
                "title": item["job_title"],
                "company": item.get("employer_name") or "",
                "description": (item.get("job_description") or "")[:500],
                "applyLink": item.get("job_apply_link") or "",
            }
            for item in answer.json()["data"][:MAX_JOBS]
        ]
        return {"jobs": jobs, "total": len(jobs)}

    return app


def main() -> None:
    serve_baseline("bench.old_app:create_app")


if __name__ == "__main__":
    main()
