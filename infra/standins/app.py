"""Stand-ins for JSearch and TheirStack that speak their documented shapes.

No machine here reaches the real APIs, so tests (and the local topology's
test runs) point JSEARCH_BASE_URL and THEIRSTACK_BASE_URL at this server.
Behaviour is scripted per source: each call takes the next scripted mode, and
falls back to the default mode once the script is used up.

Modes: ok, empty, slow, trickle, rate_limited, quota, server_error,
malformed_json, wrong_shape, forbidden, bad_gzip (a 200 whose gzip body cannot be
decoded), odd_quota_header (a good answer whose quota header is a digit `int()`
refuses), status_error (JSearch's HTTP 200 with `"status": "ERROR"` and no data),
infinite_salary (a salary of 1e400, which JSON readers take as infinity).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

JSEARCH_KEY = "test-rapidapi-key-0123456789"
THEIRSTACK_KEY = "test-theirstack-key-9876543210"


@dataclass
class SourceBehaviour:
    default: str = "ok"
    script: list[str] = field(default_factory=list)
    delay_seconds: float = 2.0
    # Added before every answer, whatever the mode.
    latency_seconds: float = 0.0
    retry_after: int = 1
    jobs: int = 20
    calls: int = 0
    last_request: dict[str, Any] = field(default_factory=dict)

    def next_mode(self) -> str:
        self.calls += 1
        return self.script.pop(0) if self.script else self.default


@dataclass
class FakeUpstreams:
    jsearch: SourceBehaviour = field(default_factory=SourceBehaviour)
    theirstack: SourceBehaviour = field(default_factory=SourceBehaviour)
    jsearch_key: str = JSEARCH_KEY
    theirstack_key: str = THEIRSTACK_KEY
    # Keys valid besides the two above, as a provider keeps an old and a new key
    # valid while a client rotates (set through /_control's "accept_keys").
    extra_keys: list[str] = field(default_factory=list)

    def reset(self) -> None:
        self.jsearch = SourceBehaviour()
        self.theirstack = SourceBehaviour()


def _seed(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def jsearch_job(query: str, index: int) -> dict[str, Any]:
    seed = _seed(f"{query}/{index}")
    return {
        "job_id": f"js-{seed:x}",
        "job_title": f"{query.split(' in ', maxsplit=1)[0].title()} #{index}",
        "employer_name": f"Employer {seed % 97}",
        "employer_logo": None,
        "job_publisher": "LinkedIn",
        "job_employment_type": "FULLTIME" if index % 3 else "CONTRACTOR",
        "job_apply_link": f"https://jobs.example.com/apply/{seed:x}",
        "job_description": "We are hiring. " * 60,
        "job_is_remote": index % 2 == 0,
        "job_posted_at_datetime_utc": "2026-11-20T10:00:00.000Z",
        "job_city": "Austin",
        "job_state": "TX",
        "job_country": "US",
        "job_min_salary": 90000 + index * 1000 if index % 4 else None,
        "job_max_salary": 140000 + index * 1000 if index % 4 else None,
        "job_salary_currency": "USD",
        "job_salary_period": "YEAR",
        "job_highlights": {"Qualifications": ["Python"]},
    }


def theirstack_job(title: str, index: int) -> dict[str, Any]:
    seed = _seed(f"{title}/{index}")
    return {
        "id": seed,
        "job_title": f"{title.title()} {index}",
        "url": f"https://www.linkedin.com/jobs/view/{seed}",
        "final_url": f"https://careers.example.com/{seed}",
        "date_posted": "2026-11-21",
        "company": f"Company {seed % 89}",
        "company_object": {"name": f"Company {seed % 89}", "domain": "example.com", "logo": None},
        "location": "Austin, Texas, United States",
        "short_location": "Austin, TX",
        "country": "United States",
        "country_code": "US",
        "remote": index % 2 == 1,
        "hybrid": False,
        "salary_string": "$120k - $150k" if index % 3 == 0 else None,
        "min_annual_salary_usd": 120000 if index % 3 == 0 else None,
        "max_annual_salary_usd": 150000 if index % 3 == 0 else None,
        "employment_statuses": ["full_time"],
        "description": "Build things. " * 80,
    }


async def _trickle(body: bytes, seconds_per_byte: float) -> AsyncIterator[bytes]:
    for index in range(len(body)):
        yield body[index : index + 1]
        await asyncio.sleep(seconds_per_byte)


async def _answer(
    mode: str, behaviour: SourceBehaviour, ok_body: dict[str, Any], *, quota_status: int
) -> Response:
    if behaviour.latency_seconds:
        await asyncio.sleep(behaviour.latency_seconds)
    if mode == "slow":
        await asyncio.sleep(behaviour.delay_seconds)
        mode = "ok"
    if mode == "ok":
        return JSONResponse(ok_body, headers={"x-ratelimit-requests-remaining": "497"})
    if mode == "empty":
        empty = dict(ok_body, data=[])
        return JSONResponse(empty)
    if mode == "trickle":
        encoded = json.dumps(ok_body).encode()
        return StreamingResponse(
            _trickle(encoded, behaviour.delay_seconds / 10), media_type="application/json"
        )
    if mode == "rate_limited":
        return JSONResponse(
            {"message": "Too many requests"},
            status_code=429,
            headers={"Retry-After": str(behaviour.retry_after)},
        )
    if mode == "quota":
        headers = {"x-ratelimit-requests-limit": "500", "x-ratelimit-requests-remaining": "0"}
        message = {"message": "You have exceeded the MONTHLY quota for Requests on your plan"}
        return JSONResponse(message, status_code=quota_status, headers=headers)
    if mode == "server_error":
        return PlainTextResponse("upstream exploded", status_code=500)
    if mode == "malformed_json":
        return Response(b'{"data": [ {"job_id": ', media_type="application/json")
    if mode == "wrong_shape":
        return JSONResponse({"unexpected": True})
    if mode == "forbidden":
        return JSONResponse({"message": "You are not subscribed to this API."}, status_code=403)
    unusual = _unusual_answer(mode, ok_body)
    if unusual is not None:
        return unusual
    raise ValueError(f"unknown fake mode {mode}")


def _unusual_answer(mode: str, ok_body: dict[str, Any]) -> Response | None:
    """Answers that a client meets rarely, and must survive all the same."""
    if mode == "bad_gzip":
        headers = {"content-encoding": "gzip", "content-type": "application/json"}
        return Response(b"this is not gzip at all", headers=headers)
    if mode == "odd_quota_header":
        # "\u00b2".isdigit() is True, yet int() refuses it; Latin-1 on the wire.
        return JSONResponse(ok_body, headers={"x-ratelimit-requests-remaining": "\u00b2"})
    if mode == "status_error":
        return JSONResponse(dict(ok_body, status="ERROR", data=[]))
    if mode == "infinite_salary":
        # 1e400 is valid JSON; Python's json (and so httpx) reads it as float("inf").
        marker = "__1e400__"
        jobs = [
            {**job, "job_min_salary": marker, "min_annual_salary_usd": marker}
            for job in ok_body["data"]
        ]
        encoded = json.dumps(dict(ok_body, data=jobs)).replace(f'"{marker}"', "1e400")
        return Response(encoded.encode(), media_type="application/json")
    return None


def build_app(state: FakeUpstreams) -> Starlette:
    async def jsearch(request: Request) -> Response:
        behaviour = state.jsearch
        behaviour.last_request = dict(request.query_params)
        if request.headers.get("x-rapidapi-key") not in (state.jsearch_key, *state.extra_keys):
            behaviour.calls += 1
            return JSONResponse({"message": "Invalid API key."}, status_code=403)
        if not request.headers.get("x-rapidapi-host"):
            behaviour.calls += 1
            return JSONResponse({"message": "Missing X-RapidAPI-Host"}, status_code=400)
        mode = behaviour.next_mode()
        query = request.query_params.get("query", "")
        body = {
            "status": "OK",
            "request_id": f"req-{_seed(query):x}",
            "parameters": dict(request.query_params),
            "data": [jsearch_job(query, i) for i in range(behaviour.jobs)],
        }
        return await _answer(mode, behaviour, body, quota_status=429)

    async def theirstack(request: Request) -> Response:
        behaviour = state.theirstack
        payload = await request.json()
        behaviour.last_request = payload
        bearer = (request.headers.get("authorization") or "").removeprefix("Bearer ")
        if bearer not in (state.theirstack_key, *state.extra_keys):
            behaviour.calls += 1
            return JSONResponse({"error": "Unauthorized"}, status_code=401)
        if "posted_at_max_age_days" not in payload and "posted_at_gte" not in payload:
            behaviour.calls += 1
            return JSONResponse({"error": "A date filter is required"}, status_code=422)
        mode = behaviour.next_mode()
        titles = payload.get("job_title_or") or ["engineer"]
        limit = min(int(payload.get("limit", 25)), behaviour.jobs)
        body = {
            "metadata": {"total_results": limit * 10, "total_companies": limit},
            "data": [theirstack_job(titles[0], i) for i in range(limit)],
        }
        return await _answer(mode, behaviour, body, quota_status=402)

    async def control(request: Request) -> Response:
        """Lets out-of-process tests (containers, benches) script the fakes."""
        if request.method == "POST":
            command = await request.json()
            if command.get("reset"):
                state.reset()
            if "accept_keys" in command:
                state.extra_keys = list(command["accept_keys"])
            for name in ("jsearch", "theirstack"):
                settings = command.get(name) or {}
                behaviour: SourceBehaviour = getattr(state, name)
                for key, value in settings.items():
                    setattr(behaviour, key, value)
        return JSONResponse(
            {
                name: {"calls": getattr(state, name).calls, "default": getattr(state, name).default}
                for name in ("jsearch", "theirstack")
            }
        )

    return Starlette(
        routes=[
            Route("/search", jsearch, methods=["GET"]),
            Route("/v1/jobs/search", theirstack, methods=["POST"]),
            Route("/_control", control, methods=["GET", "POST"]),
        ]
    )


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="Serve fake JSearch and TheirStack APIs.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    args = parser.parse_args()
    uvicorn.run(build_app(FakeUpstreams()), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
