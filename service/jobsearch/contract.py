"""What the platform code (infra/) may import from the service: one deliberate surface.

The deployment, the monitors and the `ops` CLI depend on facts the service
owns: the settings' schema, the /ready document, the security headers, the
body limit, log redaction. Importing them from here, rather than from the
modules that implement them, keeps that dependency small, visible and in one
direction; a change to anything listed here is a change to the contract.
"""

from __future__ import annotations

from jobsearch.logging_setup import REDACTED, Redactor
from jobsearch.middleware import MAX_BODY_BYTES, SECURITY_HEADERS
from jobsearch.routers.health import (
    QUOTA_LOW_BELOW,
    ConfiguredSource,
    HealthResponse,
    ReadyChecks,
    ReadyResponse,
    UnconfiguredSource,
)
from jobsearch.settings import SECRET_SETTINGS, Settings, settings_from
from jobsearch.settings_reference import render_env_example, settings_table

__all__ = [
    "MAX_BODY_BYTES",
    "QUOTA_LOW_BELOW",
    "REDACTED",
    "SECRET_SETTINGS",
    "SECURITY_HEADERS",
    "ConfiguredSource",
    "HealthResponse",
    "ReadyChecks",
    "ReadyResponse",
    "Redactor",
    "Settings",
    "UnconfiguredSource",
    "render_env_example",
    "settings_from",
    "settings_table",
]
