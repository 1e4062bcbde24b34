"""Free text the old frontend sent, normalised to one canonical form.

The deployed Next.js frontend still sends job types, dates and countries as
words ("work from home", "past week", "usa") and salaries as strings
("$120k"). The annotated types here accept every such spelling and leave one
canonical value (an enum member, an ISO-3166 alpha-2 code, an int), so that
the request model (jobsearch.models) and everything past it see one form.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any

from iso3166 import countries_by_alpha2, countries_by_alpha3, countries_by_name
from pydantic import AfterValidator, BeforeValidator, Field

MAX_SALARY = 10_000_000


class JobType(StrEnum):
    ANY = ""
    REMOTE = "Remote"
    ON_SITE = "On-site"
    HYBRID = "Hybrid"
    FULL_TIME = "Full-time"
    PART_TIME = "Part-time"


class DatePosted(StrEnum):
    ALL = "all"
    TODAY = "today"
    THREE_DAYS = "3days"
    WEEK = "week"
    MONTH = "month"


def _fold(text: str) -> str:
    """Lower-case and collapse spaces, hyphens and underscores: "Full_time " -> "full time"."""
    return re.sub(r"[\s_\-]+", " ", text).strip().casefold()


_JOB_TYPE_WORDS: dict[str, JobType] = {
    "": JobType.ANY,
    "any": JobType.ANY,
    "all": JobType.ANY,
    "remote": JobType.REMOTE,
    "work from home": JobType.REMOTE,
    "wfh": JobType.REMOTE,
    "on site": JobType.ON_SITE,
    "onsite": JobType.ON_SITE,
    "in office": JobType.ON_SITE,
    "office": JobType.ON_SITE,
    "hybrid": JobType.HYBRID,
    "full time": JobType.FULL_TIME,
    "fulltime": JobType.FULL_TIME,
    "part time": JobType.PART_TIME,
    "parttime": JobType.PART_TIME,
}

_DATE_POSTED_WORDS: dict[str, DatePosted] = {
    "": DatePosted.ALL,
    "all": DatePosted.ALL,
    "any": DatePosted.ALL,
    "any time": DatePosted.ALL,
    "anytime": DatePosted.ALL,
    "today": DatePosted.TODAY,
    "past 24 hours": DatePosted.TODAY,
    "last 24 hours": DatePosted.TODAY,
    "24h": DatePosted.TODAY,
    "3days": DatePosted.THREE_DAYS,
    "3 days": DatePosted.THREE_DAYS,
    "past 3 days": DatePosted.THREE_DAYS,
    "last 3 days": DatePosted.THREE_DAYS,
    "week": DatePosted.WEEK,
    "past week": DatePosted.WEEK,
    "last week": DatePosted.WEEK,
    "this week": DatePosted.WEEK,
    "7 days": DatePosted.WEEK,
    "past 7 days": DatePosted.WEEK,
    "month": DatePosted.MONTH,
    "past month": DatePosted.MONTH,
    "last month": DatePosted.MONTH,
    "this month": DatePosted.MONTH,
    "30 days": DatePosted.MONTH,
    "past 30 days": DatePosted.MONTH,
}

_COUNTRY_ALIASES = {
    "usa": "US",
    "united states": "US",
    "america": "US",
    "uk": "GB",
    "united kingdom": "GB",
    "great britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "russia": "RU",
    "south korea": "KR",
    "korea": "KR",
    "vietnam": "VN",
    "iran": "IR",
    "bolivia": "BO",
    "venezuela": "VE",
    "tanzania": "TZ",
    "taiwan": "TW",
    "czech republic": "CZ",
    "czechia": "CZ",
    "netherlands": "NL",
    "the netherlands": "NL",
    "holland": "NL",
    "uae": "AE",
    "syria": "SY",
    "laos": "LA",
    "moldova": "MD",
}


def _words_to_enum(table: Mapping[str, StrEnum], allowed: str) -> Any:
    def parse(value: object) -> object:
        if value is None:
            return ""
        if not isinstance(value, str):
            return value  # the enum check then reports the wrong type
        folded = _fold(value)
        if folded in table:
            return table[folded]
        raise ValueError(f"unknown value {value[:40]!r}; use one of {allowed}")

    return BeforeValidator(parse)


def _parse_salary(value: object) -> object:
    """Accept 120000, "120000", "120,000", "$120k" and "" (no bound)."""
    if value is None or isinstance(value, int | float):
        return value
    if not isinstance(value, str):
        return value
    text = value.strip().lower().replace(",", "").replace("$", "").replace(" ", "")
    if not text:
        return None
    multiplier = 1
    if text.endswith("k"):
        multiplier, text = 1000, text[:-1]
    if not re.fullmatch(r"\d{1,9}(\.\d{1,2})?", text):
        raise ValueError("must be a number such as 120000 or 120k")
    return int(float(text) * multiplier)


def _parse_country(value: object) -> object:
    """Names and ISO-3166 codes become the alpha-2 code; "" means any country."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("must be a country name or ISO-3166 code")
    text = " ".join(value.split())
    if not text:
        return None
    if len(text) > 60:
        raise ValueError("must be at most 60 characters")
    upper = text.upper()
    if len(upper) == 2 and upper in countries_by_alpha2:
        return upper
    if len(upper) == 3 and upper in countries_by_alpha3:
        return countries_by_alpha3[upper].alpha2
    if upper in countries_by_name:
        return countries_by_name[upper].alpha2
    alias = _COUNTRY_ALIASES.get(text.casefold())
    if alias:
        return alias
    raise ValueError(f"unknown country {text!r}; use a name or an ISO-3166 code like US")


_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _collapse_spaces(text: str) -> str:
    # Postgres cannot store NUL, and no search needs a control character.
    if _CONTROL_CHARACTERS.search(text):
        raise ValueError("must not contain control characters")
    return " ".join(text.split())


SalaryAmount = Annotated[int, Field(ge=0, le=MAX_SALARY)]
Salary = Annotated[SalaryAmount | None, BeforeValidator(_parse_salary)]
SearchText = Annotated[str, AfterValidator(_collapse_spaces)]
Country = Annotated[str | None, BeforeValidator(_parse_country)]
JobTypeWords = Annotated[
    JobType, _words_to_enum(_JOB_TYPE_WORDS, "Remote, On-site, Hybrid, Full-time, Part-time")
]
DatePostedWords = Annotated[
    DatePosted, _words_to_enum(_DATE_POSTED_WORDS, "today, 3days, week, month, all")
]
