"""Which images a stack runs: the one rule, for the program, the deploy workflow and `ops`.

A stack runs the images its config names (imageRef, proxyImage, redisImage),
or, when it promotes (promoteFrom, prod: staging), exactly the images its
source stack exports now. In a promoting stack imageRef is an emergency
override: the program warns while it is set, `ops rollback` sets it, and the
deploy workflow refuses to promote until a person removes it.

- the Pulumi program: `promoted_images` over the source stack's outputs
  (infra/config/images.py reads them through a StackReference);
- the deploy workflow: `python -m infra.promotion prepare --stack S --image REF`
  before `pulumi up` (whether S promotes, and from where, is its own promoteFrom,
  so the workflow never restates it), and `running --stack S` for the image a
  stack exports (before the update, and after it);
- `ops rollback`: `pin`.

Free of the Pulumi SDK: `ops` and the workflow import it without the engine.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from infra.image_refs import is_pinned
from infra.topology import PROJECT, Images


@dataclass(frozen=True)
class ImageSlot:
    """One image a stack runs: its topology.Images field, the config key that names it,
    and the stack output that exports it (what a promoting stack reads)."""

    role: str
    key: str
    output: str


SLOTS = (
    ImageSlot("service", "imageRef", "image_ref"),
    ImageSlot("proxy", "proxyImage", "proxy_image_ref"),
    ImageSlot("redis", "redisImage", "redis_image_ref"),
)
SERVICE = SLOTS[0]
PROMOTE_KEY = "promoteFrom"
PROMOTE_CONFIG_KEY = f"{PROJECT}:{PROMOTE_KEY}"
# Where the images came from: "config" or the source stack's name.
SOURCE_OUTPUT = "images_from"
# Every output the images are exported as.
OUTPUTS = (*(slot.output for slot in SLOTS), SOURCE_OUTPUT)
IMAGE_CONFIG_KEY = f"{PROJECT}:{SERVICE.key}"
IMAGE_OUTPUT = SERVICE.output


class PromotionError(Exception):
    """The stack cannot run what its source runs; the message says what to do."""


def image_outputs(images: Images, source: str) -> dict[str, str]:
    """The stack outputs that export `images` (what a stack promoting from this one reads)."""
    outputs = {slot.output: str(getattr(images, slot.role)) for slot in SLOTS}
    return {**outputs, SOURCE_OUTPUT: source}


def configured_images(values: Mapping[str, str]) -> Images:
    """A stack's own images, from its config values by key."""
    return Images(**{slot.role: values[slot.key] for slot in SLOTS})


def promoted_images(source: str, exported: Mapping[str, object]) -> Images:
    """The images `source` exports, each pinned by digest, or PromotionError."""
    images = {}
    for slot in SLOTS:
        value = exported.get(slot.output)
        if not isinstance(value, str) or not is_pinned(value):
            raise PromotionError(
                f"stack {source} exports no digest-pinned {slot.output} (got {value!r}): "
                f"deploy it first with `pulumi up -s {source}`, or point "
                f"{PROJECT}:{PROMOTE_KEY} at the stack to promote from"
            )
        images[slot.role] = value
    return Images(**images)


def override_warning(stack: str, override: str, promoted: str, source: str) -> str:
    return (
        f"{stack} runs {override} from {IMAGE_CONFIG_KEY}, not {promoted}, which {source} "
        f"runs: an emergency override. Remove it to promote again: pulumi config rm "
        f"{IMAGE_CONFIG_KEY} -s {stack}"
    )


class Stack(Protocol):
    """What the rule needs of a stack through the `pulumi` CLI (infra/ops/pulumi_stack.py)."""

    name: str

    def output(self, name: str) -> str | None: ...

    def config_value(self, key: str) -> str | None: ...

    def set_config(self, key: str, value: str) -> None: ...


def pin(stack: Stack, image: str) -> None:
    """Make `stack` run `image` at its next update; in a promoting stack, an override."""
    stack.set_config(IMAGE_CONFIG_KEY, image)


def prepare(stack: Stack, image: str, source: Stack | None) -> None:
    """Before a deploy of `image`: pin it, or (promoting) check that the source runs it and
    that no override would keep this stack from running it."""
    if source is None:
        pin(stack, image)
        return
    pinned = stack.config_value(IMAGE_CONFIG_KEY)
    if pinned:
        raise PromotionError(
            f"{stack.name} is pinned to {pinned} ({IMAGE_CONFIG_KEY}, set by a rollback). Once "
            f"the fix has passed {source.name}: pulumi config rm {IMAGE_CONFIG_KEY} -s "
            f"{stack.name} (runbooks/rollback.md), then re-run this job."
        )
    running = source.output(IMAGE_OUTPUT)
    if running != image:
        raise PromotionError(
            f"{source.name} now runs {running}, not {image}, which this run tested; the run "
            "that deployed it promotes it."
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.promotion", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    prepare_parser = commands.add_parser("prepare", help="ready a stack to deploy an image")
    prepare_parser.add_argument("--stack", required=True)
    prepare_parser.add_argument("--image", required=True)
    running_parser = commands.add_parser("running", help="print the image a stack exports")
    running_parser.add_argument("--stack", required=True)
    args = parser.parse_args(argv)
    # Imported here: infra/ops/pulumi_stack.py imports this module's names.
    from infra.ops.cli import OpsError  # noqa: PLC0415
    from infra.ops.pulumi_stack import PulumiStack  # noqa: PLC0415

    try:
        if args.command == "running":
            print(PulumiStack(args.stack).output(IMAGE_OUTPUT) or "")
            return 0
        stack = PulumiStack(args.stack)
        source_name = stack.config_value(PROMOTE_CONFIG_KEY)
        prepare(stack, args.image, PulumiStack(source_name) if source_name else None)
    except (PromotionError, OpsError) as error:
        print(f"::error::{error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
