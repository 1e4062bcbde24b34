"""The stand-in server: JSearch's and TheirStack's endpoints, in their documented shapes.

`make local` points JSEARCH_BASE_URL or THEIRSTACK_BASE_URL at it when a source
has no key; the tests do the same. Its listings are the bundled sample
(infra/standins/listings.py), filtered by each request, or, for tests that
count jobs, `jobs` generated ones ("listings": "generated").

Behaviour is scripted per source through /_control (never published: `ops local
fault` and the tests reach it inside the container): each call takes the next
scripted mode, and falls back to the default mode once the script is used up.

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
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from infra.standins import CONTROL_PATH, JSEARCH_KEY, PORT, SOURCES, THEIRSTACK_KEY
from infra.standins.listings import jsearch_sample, theirstack_sample

__all__ = ["JSEARCH_KEY", "THEIRSTACK_KEY", "SourceBehaviour", "StandinState", "build_app"]

Listings = Literal["sample", "generated"]
# What a good answer's quota header says; `ops local fault ... quota-low` lowers it.
QUOTA_REMAINING = 497


@dataclass
class SourceBehaviour:
    default: str = "ok"
    script: list[str] = field(default_factory=list)
    delay_seconds: float = 2.0
    # Added before every answer, whatever the mode.
    latency_seconds: float = 0.0
    retry_after: int = 1
    # Generated listings per answer (the sample answers what matches instead).
    jobs: int = 20
    quota_remaining: int = QUOTA_REMAINING
    calls: int = 0
    last_request: dict[str, Any] = field(default_factory=dict)

    def next_mode(self) -> str:
        self.calls += 1
        return self.script.pop(0) if self.script else self.default


@dataclass
class StandinState:
    # Set at start; /_control's "reset" keeps it, its "listings" changes it.
    listings: Listings = "sample"
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
    answer = _failure_answer(mode, behaviour, quota_status) or _unusual_answer(mode, ok_body)
    if answer is not None:
        return answer
    if mode == "ok":
        quota = {"x-ratelimit-requests-remaining": str(behaviour.quota_remaining)}
        return JSONResponse(ok_body, headers=quota)
    if mode == "empty":
        return JSONResponse(dict(ok_body, data=[]))
    if mode == "trickle":
        encoded = json.dumps(ok_body).encode()
        return StreamingResponse(
            _trickle(encoded, behaviour.delay_seconds / 10), media_type="application/json"
        )
    raise ValueError(f"unknown stand-in mode {mode}")


def _failure_answer(mode: str, behaviour: SourceBehaviour, quota_status: int) -> Response | None:
    """The answers of an upstream that refuses or fails."""
    failures: dict[str, Callable[[], Response]] = {
        "rate_limited": lambda: JSONResponse(
            {"message": "Too many requests"},
            status_code=429,
            headers={"Retry-After": str(behaviour.retry_after)},
        ),
        "quota": lambda: JSONResponse(
            {"message": "You have exceeded the MONTHLY quota for Requests on your plan"},
            status_code=quota_status,
            headers={"x-ratelimit-requests-limit": "500", "x-ratelimit-requests-remaining": "0"},
        ),
        "server_error": lambda: PlainTextResponse("upstream exploded", status_code=500),
        "malformed_json": lambda: Response(
            b'{"data": [ {"job_id": ', media_type="application/json"
        ),
        "wrong_shape": lambda: JSONResponse({"unexpected": True}),
        "forbidden": lambda: JSONResponse(
            {"message": "You are not subscribed to this API."}, status_code=403
        ),
    }
    make = failures.get(mode)
    return make() if make is not None else None


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


def build_app(state: StandinState) -> Starlette:
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
        if state.listings == "sample":
            jobs = jsearch_sample(request.query_params)
        else:
            jobs = [jsearch_job(query, i) for i in range(behaviour.jobs)]
        body = {
            "status": "OK",
            "request_id": f"req-{_seed(query):x}",
            "parameters": dict(request.query_params),
            "data": jobs,
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
        if state.listings == "sample":
            jobs, total = theirstack_sample(payload)
        else:
            titles = payload.get("job_title_or") or ["engineer"]
            limit = min(int(payload.get("limit", 25)), behaviour.jobs)
            jobs, total = [theirstack_job(titles[0], i) for i in range(limit)], limit * 10
        companies = len({job["company"] for job in jobs})
        body = {"metadata": {"total_results": total, "total_companies": companies}, "data": jobs}
        return await _answer(mode, behaviour, body, quota_status=402)

    async def control(request: Request) -> Response:
        """Scripts the behaviour from outside (`ops local fault`, containers, benches)."""
        if request.method == "POST":
            command = await request.json()
            if command.get("reset"):
                state.reset()
            if "accept_keys" in command:
                state.extra_keys = list(command["accept_keys"])
            if command.get("listings") in ("sample", "generated"):
                state.listings = command["listings"]
            for name in SOURCES:
                settings = command.get(name) or {}
                behaviour: SourceBehaviour = getattr(state, name)
                for key, value in settings.items():
                    setattr(behaviour, key, value)
        return JSONResponse(
            {
                name: {"calls": getattr(state, name).calls, "default": getattr(state, name).default}
                for name in SOURCES
            }
        )

    return Starlette(
        routes=[
            Route("/search", jsearch, methods=["GET"]),
            Route("/v1/jobs/search", theirstack, methods=["POST"]),
            Route(CONTROL_PATH, control, methods=["GET", "POST"]),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    import uvicorn  # noqa: PLC0415 - only the server needs it

    parser = argparse.ArgumentParser(description="Serve stand-ins for JSearch and TheirStack.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument(
        "--listings",
        choices=("sample", "generated"),
        default="sample",
        help="the bundled sample, filtered by each request (default), or generated jobs",
    )
    args = parser.parse_args(argv)
    state = StandinState(listings=args.listings)
    uvicorn.run(build_app(state), host=args.host, port=args.port, log_level="warning")
