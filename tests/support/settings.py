"""Service settings for an app under test: the fake upstreams and a real cache."""

from __future__ import annotations

from typing import Any

from infra.standins import JSEARCH_KEY, THEIRSTACK_KEY
from jobsearch.settings import Settings, settings_from


def service_settings(fakes_url: str, **values: Any) -> Settings:
    """From these values alone (database_url among them): the developer's environment
    and .env never leak in."""
    settings: dict[str, Any] = {
        "rapid_api_key": JSEARCH_KEY,
        "theirstack_api_key": THEIRSTACK_KEY,
        "jsearch_base_url": fakes_url,
        "theirstack_base_url": fakes_url,
        "upstream_timeout_seconds": 1.0,
        "rate_limit": "1000/minute",
        "cors_origins": "https://app.example.com",
        **values,
    }
    return settings_from(settings)
