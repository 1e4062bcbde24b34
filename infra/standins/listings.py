"""The bundled sample of listings, filtered as each API filters, in each API's shape.

samples.json holds neutral records (title, company, city, country, type, salary,
days since posting); a request's fields select and page them, and the answer
takes the shape the real API documents (../shared reference: upstream-apis.md):
JSearch's `GET /search` query parameters and `data` items, TheirStack's
`POST /v1/jobs/search` body and `data` items. Posting dates count back from the
moment of the request, so "posted today" keeps meaning something.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

SAMPLES = Path(__file__).with_name("samples.json")
# JSearch answers ten listings a page.
JSEARCH_PAGE_SIZE = 10
JSEARCH_MAX_AGE_DAYS = {"today": 1, "3days": 3, "week": 7, "month": 30}
# Rough yearly rates, enough for TheirStack's USD salary fields.
USD_PER_UNIT = {"USD": 1.0, "GBP": 1.27, "EUR": 1.09, "CAD": 0.73, "AUD": 0.66, "INR": 0.012}
THEIRSTACK_STATUSES = {
    "FULLTIME": "full_time",
    "PARTTIME": "part_time",
    "CONTRACTOR": "contract",
    "INTERN": "internship",
}
# Words a search may carry that say nothing about the job.
_IGNORED_WORDS = frozenset({"and", "or", "the", "of", "for", "a", "an", "job", "jobs"})
_WORD = re.compile(r"[\w+#]+")

Listing = Mapping[str, Any]


@cache
def sample_listings() -> tuple[Listing, ...]:
    """Every bundled listing, read once."""
    document = json.loads(SAMPLES.read_text(encoding="utf-8"))
    return tuple(document["listings"])


def _words(text: str) -> list[str]:
    return [word for word in _WORD.findall(text.lower()) if word not in _IGNORED_WORDS]


def _matches_words(listing: Listing, text: str, *, title_only: bool = False) -> bool:
    """Every word of `text` starts a word of the listing's title (or its industry or skills)."""
    haystack = listing["title"]
    if not title_only:
        haystack = " ".join([haystack, listing["industry"], *listing["skills"]])
    found = _words(haystack)
    return all(any(word.startswith(part) for word in found) for part in _words(text))


def _matches_place(listing: Listing, place: str) -> bool:
    wanted = place.strip().lower()
    names = (listing["city"], listing["state"], listing["country"], listing["country_name"])
    return (
        not wanted
        or any(wanted == name.lower() for name in names if name)
        or (wanted in listing["city"].lower())
    )


def _posted(listing: Listing, now: datetime) -> datetime:
    # A few hours into the day before, so that "today" holds for days_ago 0 only.
    return now - timedelta(days=int(listing["posted_days_ago"]), hours=2)


def _usd(listing: Listing, field: str) -> int | None:
    amount = listing[field]
    if amount is None:
        return None
    return int(round(float(amount) * USD_PER_UNIT.get(listing["currency"], 1.0), -3))


def _newest_first(listings: Iterable[Listing]) -> list[Listing]:
    return sorted(listings, key=lambda listing: (listing["posted_days_ago"], listing["id"]))


# --- JSearch -------------------------------------------------------------
def jsearch_matches(params: Mapping[str, str], listings: Sequence[Listing]) -> list[Listing]:
    """What JSearch's query parameters select: query ("what in where"), country,
    date_posted, employment_types and remote_jobs_only."""
    what, _, where = params.get("query", "").rpartition(" in ")
    if not what:  # no " in ": the whole query says what
        what, where = where, ""
    country = params.get("country", "").strip().lower()
    max_age = JSEARCH_MAX_AGE_DAYS.get(params.get("date_posted", "all").strip().lower())
    types = {kind.strip().upper() for kind in params.get("employment_types", "").split(",")}
    types.discard("")
    remote_only = params.get("remote_jobs_only", "").strip().lower() == "true"
    return _newest_first(
        listing
        for listing in listings
        if _matches_words(listing, what)
        and _matches_place(listing, where)
        and (not country or listing["country"].lower() == country)
        and (max_age is None or listing["posted_days_ago"] < max_age)
        and (not types or listing["employment"] in types)
        and (not remote_only or listing["remote"])
    )


def jsearch_page(params: Mapping[str, str], matches: Sequence[Listing]) -> list[Listing]:
    """`page` (from 1) and `num_pages` pages of ten."""
    page = max(_int(params.get("page"), 1), 1)
    pages = min(max(_int(params.get("num_pages"), 1), 1), 20)
    start = (page - 1) * JSEARCH_PAGE_SIZE
    return list(matches[start : start + pages * JSEARCH_PAGE_SIZE])


def jsearch_item(listing: Listing, now: datetime) -> dict[str, Any]:
    posted = _posted(listing, now)
    return {
        "job_id": listing["id"],
        "job_title": listing["title"],
        "employer_name": listing["company"],
        "employer_logo": None,
        "job_publisher": listing["publisher"],
        "job_employment_type": listing["employment"],
        "job_apply_link": f"https://jobs.example.com/apply/{listing['id']}",
        "job_description": listing["description"],
        "job_is_remote": listing["remote"],
        "job_posted_at_timestamp": int(posted.timestamp()),
        "job_posted_at_datetime_utc": posted.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "job_city": listing["city"],
        "job_state": listing["state"] or None,
        "job_country": listing["country"],
        "job_min_salary": listing["salary_min"],
        "job_max_salary": listing["salary_max"],
        "job_salary_currency": listing["currency"] if listing["salary_min"] else None,
        "job_salary_period": "YEAR" if listing["salary_min"] else None,
        "job_highlights": {"Qualifications": [skill.title() for skill in listing["skills"]]},
    }


def jsearch_sample(params: Mapping[str, str], now: datetime | None = None) -> list[dict[str, Any]]:
    """JSearch's `data` for these query parameters, from the bundled sample."""
    moment = now or datetime.now(UTC)
    found = jsearch_page(params, jsearch_matches(params, sample_listings()))
    return [jsearch_item(listing, moment) for listing in found]


# --- TheirStack ----------------------------------------------------------
def theirstack_matches(body: Mapping[str, Any], listings: Sequence[Listing]) -> list[Listing]:
    """What TheirStack's body selects: job_title_or, job_country_code_or,
    job_location_pattern_or, posted_at_max_age_days, remote, min/max_salary_usd."""
    titles = [str(title) for title in body.get("job_title_or") or []]
    countries = {str(code).upper() for code in body.get("job_country_code_or") or []}
    places = [str(place) for place in body.get("job_location_pattern_or") or []]
    max_age = body.get("posted_at_max_age_days")
    remote = body.get("remote")
    low, high = body.get("min_salary_usd"), body.get("max_salary_usd")

    def salary_fits(listing: Listing) -> bool:
        if low is None and high is None:
            return True
        top, bottom = _usd(listing, "salary_max"), _usd(listing, "salary_min")
        if top is None or bottom is None:
            return False
        return (low is None or top >= low) and (high is None or bottom <= high)

    return _newest_first(
        listing
        for listing in listings
        if (not titles or any(_matches_words(listing, t, title_only=True) for t in titles))
        and (not countries or listing["country"] in countries)
        and (not places or any(_matches_place(listing, place) for place in places))
        and (max_age is None or listing["posted_days_ago"] < int(max_age))
        and (remote is None or listing["remote"] is bool(remote))
        and salary_fits(listing)
    )


def theirstack_item(listing: Listing, now: datetime) -> dict[str, Any]:
    low, high = _usd(listing, "salary_min"), _usd(listing, "salary_max")
    numeric_id = int(listing["id"].rsplit("-", 1)[1])
    short = ", ".join(part for part in (listing["city"], listing["state"]) if part)
    return {
        "id": numeric_id,
        "job_title": listing["title"],
        "url": f"https://www.linkedin.com/jobs/view/{numeric_id}",
        "final_url": f"https://careers.example.com/jobs/{listing['id']}",
        "date_posted": _posted(listing, now).date().isoformat(),
        "company": listing["company"],
        "company_object": {"name": listing["company"], "domain": "example.com", "logo": None},
        "location": f"{listing['city']}, {listing['country_name']}",
        "short_location": short,
        "country": listing["country_name"],
        "country_code": listing["country"],
        "remote": listing["remote"],
        "hybrid": False,
        "salary_string": f"${low:,} - ${high:,}" if low and high else None,
        "min_annual_salary_usd": low,
        "max_annual_salary_usd": high,
        "employment_statuses": [THEIRSTACK_STATUSES[listing["employment"]]],
        "description": listing["description"],
    }


def theirstack_sample(
    body: Mapping[str, Any], now: datetime | None = None
) -> tuple[list[dict[str, Any]], int]:
    """TheirStack's `data` for this body (`page` from 0, `limit` a page), and the total."""
    moment = now or datetime.now(UTC)
    matches = theirstack_matches(body, sample_listings())
    limit = min(max(_int(body.get("limit"), 25), 1), 500)
    start = max(_int(body.get("page"), 0), 0) * limit
    page = matches[start : start + limit]
    return [theirstack_item(listing, moment) for listing in page], len(matches)


def _int(value: object, default: int) -> int:
    try:
        return int(str(value))
    except ValueError:
        return default
