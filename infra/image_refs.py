"""What counts as an image pinned by digest: one rule for the stack config and `ops`.

Free of Pulumi, so that the `ops` CLI can import it anywhere.
"""

from __future__ import annotations

import re

_DIGEST_REF = re.compile(
    r"(?P<repository>[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*)"
    r"(?::(?P<tag>\w[\w.-]{0,127}))?@sha256:(?P<digest>[0-9a-f]{64})"
)
DIGEST = re.compile(r"sha256:(?P<digest>[0-9a-f]{64})")


def digest_reference(value: str) -> re.Match[str] | None:
    """`repository[:tag]@sha256:<64 hex>`, with Docker's rules for the repository name."""
    return _DIGEST_REF.fullmatch(value)
