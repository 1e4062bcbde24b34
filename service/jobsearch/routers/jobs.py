"""The search endpoints the frontend calls, one per job source."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from jobsearch.context import current_facts
from jobsearch.deps import RateLimitedSearchDep, SettingsDep
from jobsearch.errors import BAD_JSON_MESSAGE, ErrorResponse
from jobsearch.middleware import BODY_TOO_LARGE_MESSAGE
from jobsearch.models import JobSearchRequest, JobSearchResponse

router = APIRouter(prefix="/api/jobs", tags=["jobs"])

# On a search answered from a local stand-in's sample listings (SAMPLE_SOURCES).
SAMPLE_DATA_HEADER = "X-Sample-Data"

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: BAD_JSON_MESSAGE,
        401: "FRONTEND_API_KEYS is set and no valid Authorization: Bearer <key> came.",
        413: BODY_TOO_LARGE_MESSAGE,
        422: "A field, or the X-End-User header, is invalid; the message names it.",
        408: "The request body did not arrive in time.",
        429: "This address sent too many searches; see Retry-After.",
        502: "The job source failed or answered with unreadable data.",
        503: "The source is not configured, rate limited, out of quota, out of today's budget "
        "(budget_exhausted) or paused, or this worker is overloaded; see Retry-After.",
        504: "The job source did not answer in time.",
    }.items()
}


# The search service hands back the body already rendered from a JobSearchResponse
# (see search.render): response_model documents it, and FastAPI does not render twice.
@router.post("/jsearch", response_model=JobSearchResponse, responses=_ERRORS)
async def search_jsearch(
    request: JobSearchRequest, search: RateLimitedSearchDep, settings: SettingsDep
) -> Response:
    """Jobs from JSearch (RapidAPI), at most 15, cached per distinct search."""
    return await _search("jsearch", request, search, settings)


@router.post("/theirstack", response_model=JobSearchResponse, responses=_ERRORS)
async def search_theirstack(
    request: JobSearchRequest, search: RateLimitedSearchDep, settings: SettingsDep
) -> Response:
    """Jobs from TheirStack, at most 15, cached per distinct search."""
    return await _search("theirstack", request, search, settings)


async def _search(
    source: str, request: JobSearchRequest, search: RateLimitedSearchDep, settings: SettingsDep
) -> Response:
    body = await search.search(source, request)
    # hit, miss, coalesced or bypass: lets clients and smoke tests see the cache work.
    headers = {"X-Cache": current_facts().cache or "miss"}
    if source in settings.sample_sources:
        # Sample listings must never pass for real ones (docs/frontend.md).
        headers[SAMPLE_DATA_HEADER] = "true"
    return Response(content=body, media_type="application/json", headers=headers)
