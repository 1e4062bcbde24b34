"""What every `ops` command shares: printing for a person or as JSON, and masking secrets."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from jobsearch.contract import REDACTED, Redactor

Verdict = Literal["pass", "warn", "fail"]
_MARKS: Mapping[Verdict, str] = {"pass": "ok  ", "warn": "WARN", "fail": "FAIL"}
_DSN_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


@dataclass
class Check:
    """One finding: what was looked at, how it went, and the figures behind it."""

    name: str
    verdict: Verdict
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


def worst(checks: Iterable[Check]) -> Verdict:
    verdicts = {check.verdict for check in checks}
    if "fail" in verdicts:
        return "fail"
    return "warn" if "warn" in verdicts else "pass"


def check_lines(checks: Iterable[Check]) -> list[str]:
    return [f"  {_MARKS[check.verdict]}  {check.name}: {check.detail}" for check in checks]


def checks_as_json(checks: Iterable[Check]) -> list[dict[str, Any]]:
    return [asdict(check) for check in checks]


def emit(args: argparse.Namespace, document: Mapping[str, Any], lines: Iterable[str]) -> None:
    """Print `document` as JSON with --json, else the human-readable `lines`."""
    if getattr(args, "json", False):
        json.dump(document, sys.stdout, indent=2, sort_keys=True, default=str)
        sys.stdout.write("\n")
    else:
        for line in lines:
            print(line)


def mask_database_url(url: str) -> str:
    """The URL with its password replaced by [REDACTED], as the service's logs write it."""
    if "://" not in url:
        return _DSN_PASSWORD.sub(lambda match: match[1] + REDACTED, url)
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    return urlunsplit(parts._replace(netloc=f"{user}:{REDACTED}@{host}{port}"))


def scrub(text: str, *secrets: str | None) -> str:
    """`text` with each secret, and any URL's credentials, redacted as the service's logs
    redact them."""
    return str(Redactor(secret for secret in secrets if secret).scrub(text))


def humanize_seconds(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h{minutes % 60:02d}m"
    return f"{hours // 24}d{hours % 24:02d}h"
