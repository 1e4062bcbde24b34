"""`ops local`: the production topology on this machine's Docker engine.

    ops local up                 build the image, start everything, migrate, print the URL
    ops local rollout --image R  replace the replicas with image R, gated by health
    ops local down [--volumes]   remove it all; the database volume only with --volumes
    ops local fault TARGET MODE  game days: a stand-in's faults, Postgres or Redis stopped

API keys come from a `.env` at the repository root when there is one. A source
without a key runs against a local stand-in serving sample listings
(infra/standins): its searches answer, marked `X-Sample-Data: true`.

The instance's status and rollback are the stacks' verbs: `ops status --stack
local` and `ops rollback --stack local` (the suite's instance is `test`).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path
from typing import cast

from docker import DockerClient
from dotenv import dotenv_values

from infra.local.engine import ensure_engine
from infra.local.images import (
    ImageError,
    build_service_image,
    build_standins_image,
    registry_reachable,
    runtime_images,
    service_base,
)
from infra.local.runner import LocalRunner
from infra.local.state import (
    API_KEY_SETTINGS,
    REPO_ROOT,
    STATE_ROOT,
    ImageSource,
    LocalConfig,
    LocalEnvironment,
    LocalState,
    StateError,
)
from infra.ops import fault
from infra.ops.cli import Command, OpsError
from infra.ops.local_stack import failures_as_ops_errors, open_runner
from infra.standins import KEY_SETTINGS, SOURCES, Source

IMAGE_SOURCE_VARIABLE = "JOBSEARCH_LOCAL_IMAGES"
IMAGE_SOURCES = ("auto", "official", "debian")
DOTENV = REPO_ROOT / ".env"


def _instance_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--env",
        choices=("local", "test"),
        default="local",
        help="which local instance (the test suite uses its own, 'test'); default local",
    )


def _up_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--images",
        choices=IMAGE_SOURCES,
        default=None,
        help=(
            "official images (needs a registry), stand-ins built from Debian packages, or "
            "auto: official when a registry answers, else Debian; "
            f"default: ${IMAGE_SOURCE_VARIABLE}, then the last choice, then auto"
        ),
    )
    parser.add_argument(
        "--image", metavar="REF", help="run this service image instead of building one"
    )


def _rollout_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", metavar="REF", required=True, help="the image to roll out")


def _down_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--volumes", action="store_true", help="also delete the database volume")


def _image_source(
    args: argparse.Namespace, saved: LocalConfig | None, client: DockerClient
) -> ImageSource:
    chosen = (
        args.images
        or os.environ.get(IMAGE_SOURCE_VARIABLE)
        or (saved.image_source if saved is not None else "auto")
    )
    if chosen not in IMAGE_SOURCES:
        raise OpsError(
            f"{IMAGE_SOURCE_VARIABLE}={chosen!r}: expected one of {', '.join(IMAGE_SOURCES)}"
        )
    if chosen != "auto":
        return cast(ImageSource, chosen)
    if registry_reachable(client):
        return "official"
    # The defaults stay the official images; this only covers machines with no registry.
    print("no container registry answers: using stand-in images built from Debian packages")
    return "debian"


def _api_keys_from_dotenv(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    values = dotenv_values(path)
    return {name: value for name in API_KEY_SETTINGS if (value := values.get(name))}


def _up(args: argparse.Namespace) -> int:
    environment: LocalEnvironment = args.env
    with failures_as_ops_errors():
        state = LocalState(environment)
        saved: LocalConfig | None
        try:
            saved = state.load_config()
        except StateError:
            saved = None
        state.prepare()
        client = ensure_engine(STATE_ROOT)
        source = _image_source(args, saved, client)
        base = service_base(client, source, STATE_ROOT / "build")
        config = replace(
            saved or LocalConfig(environment=environment),
            image_source=source,
            images=runtime_images(client, source, STATE_ROOT / "build"),
        )
        service_image = args.image
        if service_image is None:
            print(f"building the service image (base: {base or 'the Dockerfile default'})")
            try:
                service_image = build_service_image(
                    client, base_image=base, tag=f"jobsearch-api:{environment}"
                )
            except ImageError as error:
                hint = (
                    "; on a machine with no registry, run `ops local up --images debian`"
                    if source == "official"
                    else ""
                )
                raise OpsError(f"{error}{hint}") from None
        if environment == "local":
            keys = _api_keys_from_dotenv(DOTENV)
            state.set_api_keys(keys)
            config = replace(config, sample_sources=sample_sources(keys))
        if config.sample_sources:
            standin = build_standins_image(client, service_image)
            config = replace(config, images=replace(config.images, standin=standin))
        state.save_config(config)
        url = LocalRunner(client, state, config).up(service_image)
    print(f"ready: {url}")
    for line in source_lines(config.sample_sources, url):
        print(line)
    return 0


def sample_sources(keys: dict[str, str]) -> tuple[Source, ...]:
    """The sources with no key among `keys`: a stand-in serves them."""
    return tuple(source for source in SOURCES if not keys.get(KEY_SETTINGS[source]))


def source_lines(samples: tuple[Source, ...], url: str) -> list[str]:
    """Where each source's answers come from, and a search to try."""
    lines = []
    for source in SOURCES:
        origin = "sample data (stand-in)" if source in samples else "live (key from .env)"
        lines.append(f"  {source}: {origin}")
    example = '{"jobTitle": "python developer", "city": "Austin", "country": "US"}'
    lines.append(
        f"try: curl -si -X POST {url}/api/jobs/{SOURCES[0]} "
        f"-H 'Content-Type: application/json' -d '{example}'"
    )
    return lines


def _rollout(args: argparse.Namespace) -> int:
    with failures_as_ops_errors():
        runner = open_runner(args.env, say=print)
        runner.require_running()
        image_id = runner.rollout(args.image)
    print(f"rolled out {args.image} ({image_id})")
    return 0


def _down(args: argparse.Namespace) -> int:
    with failures_as_ops_errors():
        removed = open_runner(args.env, say=print).down(volumes=args.volumes)
    print(f"removed: {', '.join(removed) if removed else 'nothing'}")
    if not args.volumes:
        print("the database volume stays; `ops local down --volumes` deletes it")
    return 0


COMMAND = Command(
    "local",
    help="run the production topology on the local Docker engine",
    description=__doc__,
    arguments=_instance_argument,
    subcommands=(
        Command(
            "up",
            help="build, start, migrate, wait until healthy, print the URL",
            arguments=_up_arguments,
            run=_up,
        ),
        Command(
            "rollout",
            help="replace the replicas with a new image",
            arguments=_rollout_arguments,
            run=_rollout,
        ),
        Command(
            "down",
            help="remove the topology (the database volume stays)",
            arguments=_down_arguments,
            run=_down,
        ),
        fault.COMMAND,
    ),
)
