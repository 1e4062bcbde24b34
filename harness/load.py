"""A batch of calls at a fixed concurrency, every outcome kept (a closed-loop asyncio/httpx client).

It sends a fixed list of requests and records each answer (status, error code,
X-Cache) or transport error, so that a benchmark can check that no request
failed before it trusts a figure, and a drill can say which request failed how.
A steady load in a thread is background.py; throughput is bench/wrk.py's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx


class LoadError(Exception):
    """The load did not run as asked (it crashed, it fell short, a request failed where
    none may): the figure or the tally it would give cannot be trusted."""


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class Outcome:
    call: Call
    status: int | None  # None: no HTTP answer at all
    seconds: float
    failure: str | None = None  # the transport error, when there was no answer
    error_code: str | None = None  # the JSON error body's code on 4xx/5xx
    json_body: bool = False  # whether a 4xx/5xx body was JSON (other bodies are not read)
    cache: str | None = None  # X-Cache
    # No byte of an answer came back before the connection closed or was reset.
    unanswered: bool = False


# What httpx says when a kept-alive connection was closed before any byte of
# the answer came back, or (ReadError) was reset as the request reached it.
# Caddy closes idle client connections when it reloads; a request sent on one
# at that instant meets this. Browsers resend a request whose reused
# connection closed unanswered, whatever its method (Chromium's
# ShouldResendRequest), and HTTP/2 clients retry the streams a GOAWAY names.
_CLOSED_BEFORE_ANSWER = "Server disconnected without sending a response."


def closed_before_answer(error: httpx.HTTPError) -> bool:
    if isinstance(error, httpx.RemoteProtocolError):
        return str(error) == _CLOSED_BEFORE_ANSWER
    return isinstance(error, httpx.ReadError)


def _error_code(response: httpx.Response) -> tuple[str | None, bool]:
    try:
        body = response.json()
    except ValueError:
        return None, False
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        return (str(code) if code is not None else None), True
    return None, True


async def send(client: httpx.AsyncClient, call: Call) -> Outcome:
    """One call on `client`; its outcome, never an exception for a transport error."""
    started = time.perf_counter()
    try:
        response = await client.request(call.method, call.path, json=call.body)
    except httpx.HTTPError as error:
        return Outcome(
            call,
            None,
            time.perf_counter() - started,
            failure=f"{type(error).__name__}: {error}",
            unanswered=closed_before_answer(error),
        )
    elapsed = time.perf_counter() - started
    # Only an error's body is read: parsing every search result would load the generator.
    code, is_json = _error_code(response) if response.is_error else (None, False)
    return Outcome(
        call,
        response.status_code,
        elapsed,
        error_code=code,
        json_body=is_json,
        cache=response.headers.get("x-cache"),
    )


async def send_all(
    base_url: str, calls: Sequence[Call], *, concurrency: int, request_timeout: float = 60
) -> list[Outcome]:
    """Every call, at most `concurrency` at a time, in order of start; outcomes in call order."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(
        base_url=base_url, timeout=request_timeout, limits=limits
    ) as client:

        async def one(call: Call) -> Outcome:
            async with gate:
                return await send(client, call)

        return list(await asyncio.gather(*(one(call) for call in calls)))


def run_calls(
    base_url: str, calls: Sequence[Call], *, concurrency: int, timeout: float = 60
) -> tuple[list[Outcome], float]:
    """`send_all` from synchronous code; also returns the wall time of the whole batch."""
    started = time.perf_counter()
    outcomes = asyncio.run(
        send_all(base_url, calls, concurrency=concurrency, request_timeout=timeout)
    )
    return outcomes, time.perf_counter() - started


def require_all_ok(what: str, outcomes: Sequence[Outcome]) -> None:
    bad = [outcome for outcome in outcomes if outcome.status != 200]
    if bad:
        first = bad[0]
        raise LoadError(
            f"{what}: {len(bad)} of {len(outcomes)} requests failed "
            f"(first: {first.status or first.failure} {first.error_code or ''}); "
            "the figure would be meaningless"
        )
