"""Each benchmark runs end to end in a tiny configuration, so that bench/ cannot rot.

No timing is asserted here (timing targets live in bench/ only): these check
that every measurement path runs against real servers and that what it reports
is consistent with what it measured.
"""

from __future__ import annotations

from collections import Counter

import pytest

from bench import cache_hit, footprint, slow_upstream, upstream_calls
from bench.environment import BenchEnvironment
from bench.report import BenchResult


def assert_reported(result: BenchResult, key: str) -> None:
    assert result.key == key
    assert result.outcome == "measured"
    assert result.headline
    assert result.target
    assert result.figures, "a result without figures says nothing"
    assert all(label and value for label, value in result.figures)


def test_cache_hit_compares_the_service_with_the_bare_app(bench_env: BenchEnvironment) -> None:
    result = cache_hit.run(bench_env, cache_hit.CacheHitConfig.tiny())
    assert_reported(result, "cache_hit")
    values = result.values
    assert values["service_rps"] > 0
    assert values["bare_rps"] > 0
    assert values["ratio"] == pytest.approx(values["service_rps"] / values["bare_rps"])
    assert values["cpu_ratio"] > 0
    assert result.met is (values["ratio"] >= 0.7)
    # Every feature priced, and the prices and the rest add up to the gap to the bare app.
    priced = [values[f"cost_us_{variant.name}"] for variant in cache_hit.VARIANTS]
    assert len(priced) == 2
    gap = values["cpu_ratio"] - 1
    assert sum(priced) + values["cost_us_rest"] == pytest.approx(
        gap * values["bare_cpu_us"], rel=1e-6
    )


def test_slow_upstream_runs_the_service_and_the_blocking_baseline(
    bench_env: BenchEnvironment,
) -> None:
    config = slow_upstream.SlowUpstreamConfig.tiny()
    result = slow_upstream.run(bench_env, config)
    assert_reported(result, "slow_upstream")
    values = result.values
    assert values["speedup"] == pytest.approx(
        values["baseline_wall_seconds"] / values["service_wall_seconds"]
    )
    assert values["health_p99_ms"] > 0
    # The fakes were put back to their default behaviour for whoever comes next.
    assert bench_env.control_fakes()["jsearch"]["default"] == "ok"


def test_upstream_calls_are_counted_by_the_fake_upstream(bench_env: BenchEnvironment) -> None:
    config = upstream_calls.UpstreamCallsConfig.tiny()
    result = upstream_calls.run(bench_env, config)
    assert_reported(result, "upstream_calls")
    values = result.values
    assert values["naive"] == config.requests
    assert values["distinct"] == config.distinct
    # One call per distinct search is the floor, one per request the ceiling.
    assert config.distinct <= values["upstream_calls"] <= config.requests
    assert config.distinct <= values["single_worker_upstream_calls"] <= config.requests
    assert result.met is (values["upstream_calls"] == config.distinct)


def test_zipf_draw_covers_every_search_and_favours_the_first() -> None:
    config = upstream_calls.UpstreamCallsConfig()
    drawn = upstream_calls.draw(config)
    counts = Counter(drawn)
    assert len(drawn) == config.requests
    assert set(counts) == set(range(config.distinct))
    assert counts.most_common(1)[0][0] == 0
    assert counts[0] > 10 * counts[config.distinct - 1]
    assert upstream_calls.draw(config) == drawn  # seeded: the same load every run


def test_footprint_measures_rss_of_every_worker(bench_env: BenchEnvironment) -> None:
    config = footprint.FootprintConfig.tiny()
    ours, bare = footprint.measure_rss(bench_env, config)
    assert len(ours.per_worker_mib) == config.workers
    assert len(bare.per_worker_mib) == config.workers
    assert ours.supervisor_mib is not None  # several workers: uvicorn's supervisor
    assert all(value > 10 for value in ours.per_worker_mib + bare.per_worker_mib)


@pytest.mark.docker
def test_footprint_measures_the_image_and_its_cold_start(bench_env: BenchEnvironment) -> None:
    result = footprint.run(bench_env, footprint.FootprintConfig.tiny())
    assert_reported(result, "footprint")
    values = result.values
    assert values["image_mib"] > 0
    assert values["image_to_base_ratio"] > 1  # the service adds layers to its base
    assert values["cold_start_ratio"] > 0
    assert result.met is None  # footprint is reported, not judged


def test_cold_start_containers_are_the_topologys_replica() -> None:
    from infra.swarm import engine_spec
    from infra.topology import Images, TopologySpec, describe

    arguments = footprint.replica_arguments("svc:bench", name="cold", workers=2)
    topology = describe(
        TopologySpec(environment="local", images=Images(service="svc:bench"), workers=2)
    )
    replica = engine_spec(topology.api, topology.network, secrets={}, configs={})
    container = replica["TaskTemplate"]["ContainerSpec"]
    limits = replica["TaskTemplate"]["Resources"]["Limits"]
    assert arguments["read_only"] is container["ReadOnly"] is True
    assert arguments["user"] == container["User"] == "10001:10001"
    assert arguments["cap_drop"] == container["CapabilityDrop"] == ["ALL"]
    assert arguments["healthcheck"]["test"] == container["Healthcheck"]["Test"]
    assert list(arguments["tmpfs"]) == [m["Target"] for m in container["Mounts"]]
    assert (arguments["mem_limit"], arguments["nano_cpus"], arguments["pids_limit"]) == (
        limits["MemoryBytes"],
        limits["NanoCPUs"],
        limits["Pids"],
    )
    assert arguments["environment"]["WORKERS"] == "2"
    # Not labelled as the local topology's: `ops local` must not count or remove it.
    assert arguments["labels"]["org.jobsearch.role"] == "bench"
    assert "org.jobsearch.environment" not in arguments["labels"]
    swarm = footprint.replica_spec("svc:bench", name="cold", workers=2)
    assert swarm["TaskTemplate"]["ContainerSpec"]["Healthcheck"] == container["Healthcheck"]
    assert swarm["TaskTemplate"]["Networks"] == []


def test_multi_node_result_reports_the_ratio_of_two_nodes_to_one() -> None:
    from bench import multi_node

    config = multi_node.MultiNodeConfig.tiny()
    result = multi_node.result([100.0, 110.0], [90.0, 95.0], config)
    assert result.key == "multi_node"
    assert result.values["ratio"] == pytest.approx(92.5 / 105.0)
    assert result.met is None  # reported, not judged: the nodes share two cores
    assert "0.88x" in result.headline
