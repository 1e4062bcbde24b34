"""Stand-ins for the paid job sources, JSearch and TheirStack.

They speak each API's documented request and response shapes, so the service
runs unchanged against them. `make local` runs one (a swarm service,
infra/topology.py) for every source that has no key in `.env`, serving the
bundled sample of listings (samples.json); `ops local fault` switches their
behaviour for game days; the tests script them per call (infra/standins/app.py).

This module holds only the facts other modules share: no web stack is imported.
"""

from __future__ import annotations

from typing import Literal

Source = Literal["jsearch", "theirstack"]
SOURCES: tuple[Source, ...] = ("jsearch", "theirstack")

# Keys a stand-in accepts: what the service's key secret holds when its source is
# a stand-in. They open nothing real.
JSEARCH_KEY = "test-rapidapi-key-0123456789"
THEIRSTACK_KEY = "test-theirstack-key-9876543210"
SAMPLE_KEYS: dict[Source, str] = {"jsearch": JSEARCH_KEY, "theirstack": THEIRSTACK_KEY}

# Which service setting holds each source's key and its base URL.
KEY_SETTINGS: dict[Source, str] = {"jsearch": "RAPID_API_KEY", "theirstack": "THEIRSTACK_API_KEY"}
BASE_URL_SETTINGS: dict[Source, str] = {
    "jsearch": "JSEARCH_BASE_URL",
    "theirstack": "THEIRSTACK_BASE_URL",
}

PORT = 9100
# Scripts the stand-in's behaviour (infra/standins/app.py); never published.
CONTROL_PATH = "/_control"
