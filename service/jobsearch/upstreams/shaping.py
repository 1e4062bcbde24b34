"""Helpers that turn upstream listings into the frontend's `Job` fields."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import AfterValidator

from jobsearch.models import JobSearchRequest, JobType

_PERIODS = {"YEAR": "year", "MONTH": "month", "WEEK": "week", "DAY": "day", "HOUR": "hour"}


def join_location(*parts: str | None) -> str:
    return ", ".join(part.strip() for part in parts if part and part.strip())


def finite_or_none(value: float | None) -> float | None:
    """An amount an upstream sent as 1e400 (infinity to a JSON reader) or NaN is no amount."""
    return value if value is not None and math.isfinite(value) else None


# For the upstream models' salary fields: a non-finite amount is read as a missing one.
Amount = Annotated[float | None, AfterValidator(finite_or_none)]


def format_salary(
    low: float | None, high: float | None, currency: str | None, period: str | None
) -> str:
    """ "USD 100,000 - 150,000 / year", or "" when the listing gives no salary."""
    low, high = finite_or_none(low), finite_or_none(high)
    if low is None and high is None:
        return ""
    amounts = " - ".join(f"{round(value):,}" for value in (low, high) if value is not None)
    if low is not None and high is not None and round(low) == round(high):
        amounts = f"{round(low):,}"
    text = f"{currency or 'USD'} {amounts}"
    if period:
        text += f" / {_PERIODS.get(period.upper(), period.lower())}"
    return text


def wanted(
    search: JobSearchRequest,
    *,
    remote: bool,
    salary_low: float | None,
    salary_high: float | None,
) -> bool:
    """Filters an upstream cannot apply itself: on-site only, and salary bounds.

    A listing without a salary is kept: most listings have none, and dropping
    them would empty most searches.
    """
    if search.job_type is JobType.ON_SITE and remote:
        return False
    if (
        search.salary_min is not None
        and salary_high is not None
        and salary_high < search.salary_min
    ):
        return False
    return not (
        search.salary_max is not None and salary_low is not None and salary_low > search.salary_max
    )
