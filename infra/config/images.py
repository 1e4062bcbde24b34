"""The images a stack runs, resolved in the Pulumi program (the rule: infra/promotion.py)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import pulumi

from infra import promotion
from infra.config.model import KEYS_BY_NAME, StackConfig
from infra.config.problems import ConfigError
from infra.image_refs import DIGEST, digest_reference
from infra.topology import Images


def image_generation(image_ref: str) -> str:
    """A short name for an image: container names and aliases change with it."""
    match = digest_reference(image_ref) or DIGEST.fullmatch(image_ref)
    if match is not None:
        return match["digest"][:12]
    # A tag (dev only): its name, hashed, since the content behind it can move.
    return hashlib.sha256(image_ref.encode()).hexdigest()[:12]


def registry_host(image_ref: str) -> str | None:
    """The registry an image reference names, if it names one (`host[:port]/...`)."""
    first, slash, _ = image_ref.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def configured_image_values(config: StackConfig) -> dict[str, str]:
    """The image keys' values (imageRef, proxyImage, redisImage), by key."""
    return {slot.key: getattr(config, KEYS_BY_NAME[slot.key].field) for slot in promotion.SLOTS}


@dataclass(frozen=True)
class StackImages:
    """The images a stack runs, and where they came from."""

    images: Images
    # "config", or the source stack's full name.
    source: str
    # The source stack, when promoting: infra/separation.py reads it too.
    reference: pulumi.StackReference | None = None


async def resolve_images(config: StackConfig) -> StackImages:
    """This stack's images: from its config, or what its source stack runs now."""
    if not config.promotes:
        return StackImages(promotion.configured_images(configured_image_values(config)), "config")
    name = config.promote_from
    if "/" not in name:
        # A bare stack name: the same organization and project as this stack.
        name = f"{pulumi.get_organization()}/{pulumi.get_project()}/{name}"
    source = pulumi.StackReference("promoted-from", stack_name=name)
    exported: dict[str, object] = {}
    for slot in promotion.SLOTS:
        details = await source.get_output_details(slot.output)
        exported[slot.output] = details.value if details.value is not None else details.secret_value
    try:
        images = promotion.promoted_images(name, exported)
    except promotion.PromotionError as error:
        raise ConfigError(str(error)) from None
    if config.image_ref:
        pulumi.log.warn(
            promotion.override_warning(config.stack, config.image_ref, images.service, name)
        )
        images = replace(images, service=config.image_ref)
    return StackImages(images, name, source)
