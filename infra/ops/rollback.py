"""`ops rollback --stack S [--to DIGEST]`: run the image a stack ran before, or a given digest.

staging/prod: `pulumi config set jobsearch:imageRef REF` and `pulumi up --yes`,
where REF is --to (a digest; a bare sha256:... keeps the running image's
repository) or else the image of the newest successful update before the
current one. The rollout is the usual one: new replicas, health-gated, then
the old ones drained. In prod, which runs what staging exports, an image set
this way is an override: remove it to promote again (runbooks/rollback.md).
local/test: the local runner's rollout of --to, or of the image before the last one.
"""

from __future__ import annotations

import argparse
import sys

from infra import promotion
from infra.image_refs import NotPinned, require_pinned
from infra.ops.cli import Command, OpsError
from infra.ops.pulumi_stack import PulumiStack, previous_image, with_repository
from infra.ops.report import emit
from infra.ops.status import LOCAL_STACKS, add_stack_argument


def image_digest(value: str) -> str:
    try:
        return require_pinned(value, bare_digest=True)
    except NotPinned as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _arguments(parser: argparse.ArgumentParser) -> None:
    add_stack_argument(parser)
    parser.add_argument(
        "--to",
        type=image_digest,
        metavar="DIGEST",
        help="sha256:<64 hex> or REPO@sha256:<64 hex>; default: the previous deployed image",
    )


def run(args: argparse.Namespace) -> int:
    if args.stack in LOCAL_STACKS:
        return _rollback_local(args)
    stack = PulumiStack(args.stack)
    current = stack.output(promotion.IMAGE_OUTPUT)
    if args.to:
        target = with_repository(args.to, current)
    else:
        found = previous_image(stack.history(), current)
        if found is None:
            raise OpsError(
                f"the {args.stack} history has no earlier image than "
                f"{current or 'the current one'}; pass --to REPO@sha256:..."
            )
        target = found
    print(f"rolling back {args.stack}: {current or '(unknown)'} -> {target}", file=sys.stderr)
    # In a stack that promotes (prod), an override: runbooks/rollback.md removes it.
    promotion.pin(stack, target)
    stack.up(message=f"ops rollback to {target}")
    after = stack.output(promotion.IMAGE_OUTPUT)
    emit(
        args,
        {"stack": args.stack, "from": current, "to": target, "running": after},
        [f"{args.stack} now runs {after}"],
    )
    if after != target:
        raise OpsError(f"{args.stack} exports image {after} after the rollback, not {target}")
    return 0


def _rollback_local(args: argparse.Namespace) -> int:
    # Imported here: the Docker SDK is slow to import and only the local stacks need it.
    from infra.ops import local_stack  # noqa: PLC0415

    with local_stack.failures_as_ops_errors():
        runner = local_stack.open_runner(args.stack)
        runner.require_running()
        current = runner.state.history().current_image
        if args.to:
            runner.rollout(args.to)
            target = args.to
        else:
            target = runner.rollback()
        after = runner.state.history().current_image
    emit(
        args,
        {"stack": args.stack, "from": current, "to": target, "running": after},
        [f"{args.stack} now runs {after}"],
    )
    return 0


COMMAND = Command(
    "rollback",
    help="deploy the previous image of a stack again, or the digest given with --to",
    description=__doc__,
    arguments=_arguments,
    json=True,
    run=run,
)
