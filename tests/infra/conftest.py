"""Shared by the platform's tests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module", autouse=True)
def event_loop_for_pulumi_outputs() -> Iterator[None]:
    """Pulumi Outputs made outside a Pulumi program look up the current event loop.

    Any earlier test's asyncio.run() leaves the main thread with none, so each
    module here starts with a loop of its own (before its own module fixtures,
    such as pulumi.runtime.set_mocks, which need one).
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield
    asyncio.set_event_loop(None)
    loop.close()
