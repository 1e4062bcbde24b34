"""The promotion rule: what a promoting stack runs, and what a deploy checks first."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from infra import promotion
from infra.promotion import IMAGE_CONFIG_KEY, PromotionError
from infra.topology import Images

SERVICE = "ghcr.io/acme/api@sha256:" + "1" * 64
PROXY = "caddy:2@sha256:" + "2" * 64
REDIS = "redis:7@sha256:" + "3" * 64
EXPORTED = {"image_ref": SERVICE, "proxy_image_ref": PROXY, "redis_image_ref": REDIS}


@dataclass
class FakeStack:
    name: str
    outputs: dict[str, str] = field(default_factory=dict)
    config: dict[str, str] = field(default_factory=dict)

    def output(self, name: str) -> str | None:
        return self.outputs.get(name)

    def config_value(self, key: str) -> str | None:
        return self.config.get(key)

    def set_config(self, key: str, value: str) -> None:
        self.config[key] = value


def test_a_promoting_stack_runs_what_its_source_exports() -> None:
    images = promotion.promoted_images("staging", EXPORTED)
    assert images == Images(service=SERVICE, proxy=PROXY, redis=REDIS)
    # The outputs this stack exports in turn are the ones a stack promoting from it reads.
    outputs = promotion.image_outputs(images, "staging")
    assert promotion.promoted_images("prod", outputs) == images
    assert outputs["images_from"] == "staging"


@pytest.mark.parametrize("missing", ["image_ref", "proxy_image_ref", "redis_image_ref"])
def test_a_source_without_a_pinned_image_is_named(missing: str) -> None:
    exported = {**EXPORTED, missing: "caddy:2"}
    with pytest.raises(PromotionError, match=f"exports no digest-pinned {missing}"):
        promotion.promoted_images("org/jobsearch/staging", exported)


def test_a_stack_that_does_not_promote_is_pinned_to_the_image() -> None:
    stack = FakeStack("staging")
    promotion.prepare(stack, SERVICE, None)
    assert stack.config == {IMAGE_CONFIG_KEY: SERVICE}


def test_promoting_checks_the_source_runs_the_image_and_pins_nothing() -> None:
    prod, staging = FakeStack("prod"), FakeStack("staging", {"image_ref": SERVICE})
    promotion.prepare(prod, SERVICE, staging)
    assert prod.config == {}
    with pytest.raises(PromotionError, match=f"staging now runs {SERVICE}, not other"):
        promotion.prepare(prod, "other", staging)


def test_an_override_stops_the_promotion_until_removed() -> None:
    prod = FakeStack("prod")
    promotion.pin(prod, PROXY)  # as `ops rollback` does
    staging = FakeStack("staging", {"image_ref": SERVICE})
    with pytest.raises(PromotionError, match=f"pulumi config rm {IMAGE_CONFIG_KEY} -s prod"):
        promotion.prepare(prod, SERVICE, staging)
