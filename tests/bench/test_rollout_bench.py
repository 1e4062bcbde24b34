"""The rollout benchmark's measurement, tiny, on the suite's local topology."""

from __future__ import annotations

import pytest

from bench import rollout
from tests.support.local_topology import TestTopology

pytestmark = pytest.mark.docker


def test_rollout_bench_counts_requests_and_failures_during_replacements(
    topology: TestTopology,
) -> None:
    config = rollout.RolloutConfig.tiny()
    images = [topology.images.variant, topology.images.service]
    measured = rollout.measure_rollouts(topology.runner, topology.url, images, config)
    result = rollout.result(measured, None, config)
    assert result.key == "rollout"
    assert len(measured.replacements) == 1
    assert measured.replacements[0].image == topology.images.variant
    assert 0 < measured.during <= measured.total
    assert result.values["failed_during"] == measured.failed_during
    assert result.met is (measured.failed_during == 0 and measured.during >= config.min_requests)
    running = {str(c.attrs["Image"]) for c in topology.runner.containers("api")}
    assert running == {topology.images.variant}
