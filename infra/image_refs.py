"""What counts as an image pinned by digest: the one rule for the stack config, the
policy pack, `ops` and the workflows (`python3 -m infra.image_refs check REF`).

Free of Pulumi and of any third-party package, so that the `ops` CLI can import
it anywhere and a workflow step can run it with the runner's own python3.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence

_DIGEST_REF = re.compile(
    r"(?P<repository>[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*)"
    r"(?::(?P<tag>\w[\w.-]{0,127}))?@sha256:(?P<digest>[0-9a-f]{64})"
)
DIGEST = re.compile(r"sha256:(?P<digest>[0-9a-f]{64})")


class NotPinned(ValueError):
    """An image reference that names no digest."""


def digest_reference(value: str) -> re.Match[str] | None:
    """`repository[:tag]@sha256:<64 hex>`, with Docker's rules for the repository name."""
    return _DIGEST_REF.fullmatch(value)


def is_pinned(value: str, *, bare_digest: bool = False) -> bool:
    """A reference pinned by digest; with `bare_digest`, a lone sha256:<64 hex> (an image ID
    or a digest to complete with a repository) counts too."""
    return digest_reference(value) is not None or (
        bare_digest and DIGEST.fullmatch(value) is not None
    )


def require_pinned(value: str, *, bare_digest: bool = False) -> str:
    """`value`, stripped, if pinned by digest; else NotPinned saying what to give instead."""
    value = value.strip()
    if is_pinned(value, bare_digest=bare_digest):
        return value
    wanted = "sha256:<64 hex> or " if bare_digest else ""
    raise NotPinned(
        f"{value!r} is not an image pinned by digest: give {wanted}"
        "REGISTRY/OWNER/NAME@sha256:<64 hex> (deploys are by digest, never by tag)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m infra.image_refs", description="Check image references."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="exit 1 unless REF is pinned by digest")
    check.add_argument("ref")
    args = parser.parse_args(argv)
    try:
        require_pinned(args.ref)
    except NotPinned as error:
        # GitHub's annotation syntax: the message shows on the run's summary.
        print(f"::error::{error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
