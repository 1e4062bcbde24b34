"""3. Paid upstream calls: 1,000 searches drawn Zipf-like from 50 distinct ones.

Popular searches repeat, as they do from real users. Each distinct search is
drawn at least once and the rest by Zipf weights (1/rank^s), shuffled, then
sent at concurrency 32, so that identical searches arrive while the first is
still waiting on the (slowed) upstream. The fake upstream counts the calls it
gets. The naive count is one paid call per request; the target is one per
distinct search.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass

from bench.environment import BenchEnvironment
from bench.report import BenchResult
from harness.load import Call, require_all_ok, run_calls

TITLE = "Paid upstream calls"


@dataclass(frozen=True)
class UpstreamCallsConfig:
    requests: int = 1000
    distinct: int = 50
    concurrency: int = 32
    zipf_exponent: float = 1.1
    # A paid API takes a while to answer; it is what lets identical misses overlap.
    upstream_latency_seconds: float = 0.3
    # The topology's workers per replica: each is its own process with its own memory.
    workers: int = 2
    seed: int = 20261128

    @property
    def target(self) -> str:
        return f"= {self.distinct} (one per distinct search)"

    @classmethod
    def tiny(cls) -> UpstreamCallsConfig:
        return cls(requests=60, distinct=6, concurrency=8, upstream_latency_seconds=0.05)


def draw(config: UpstreamCallsConfig) -> list[int]:
    """Search numbers: each of `distinct` at least once, the rest Zipf-weighted, shuffled."""
    rng = random.Random(config.seed)
    ranks = list(range(config.distinct))
    weights = [1 / (rank + 1) ** config.zipf_exponent for rank in ranks]
    drawn = ranks + rng.choices(ranks, weights=weights, k=config.requests - config.distinct)
    rng.shuffle(drawn)
    return drawn


@dataclass(frozen=True)
class Measured:
    workers: int
    upstream: int
    cache_states: Counter[str]
    wall_seconds: float


def _measure(
    env: BenchEnvironment, config: UpstreamCallsConfig, sequence: list[int], workers: int
) -> Measured:
    run_id = uuid.uuid4().hex[:8]  # a cold cache for each run
    calls = [
        Call("POST", "/api/jobs/jsearch", {"jobTitle": f"role {number} {run_id}", "city": "Austin"})
        for number in sequence
    ]
    with env.service(f"upstream-calls-{workers}-workers", workers=workers) as service:
        before = env.upstream_calls()
        outcomes, wall = run_calls(service.url, calls, concurrency=config.concurrency)
        upstream = env.upstream_calls() - before
    require_all_ok(f"service with {workers} workers", outcomes)
    states = Counter(outcome.cache or "none" for outcome in outcomes)
    return Measured(workers, upstream, states, wall)


def run(env: BenchEnvironment, config: UpstreamCallsConfig | None = None) -> BenchResult:
    config = config or UpstreamCallsConfig()
    sequence = draw(config)
    env.control_fakes(reset=True, jsearch={"latency_seconds": config.upstream_latency_seconds})
    try:
        ours = _measure(env, config, sequence, config.workers)
        single = _measure(env, config, sequence, 1) if config.workers > 1 else None
    finally:
        env.control_fakes(reset=True)

    distinct = len(set(sequence))
    naive = len(sequence)
    popularity = Counter(sequence).most_common()
    figures = [
        ("Upstream calls / naive count (one per request)", f"**{ours.upstream} / {naive:,}**"),
        ("Upstream calls / distinct searches", f"**{ours.upstream} / {distinct}**"),
        ("Calls beyond one per distinct search", str(ours.upstream - distinct)),
        (
            "X-Cache of the answers",
            ", ".join(f"{state} {count}" for state, count in sorted(ours.cache_states.items())),
        ),
    ]
    if single is not None:
        figures.append(
            (
                "Same load on one worker: upstream calls / distinct searches",
                f"{single.upstream} / {distinct}",
            )
        )
    figures += [
        ("Most requested search / least", f"{popularity[0][1]} requests / {popularity[-1][1]}"),
        (
            "Load",
            f"{naive:,} requests at concurrency {config.concurrency}, Zipf exponent "
            f"{config.zipf_exponent}, upstream latency "
            f"{config.upstream_latency_seconds * 1000:.0f} ms, {ours.wall_seconds:.1f} s in all",
        ),
        ("uvicorn workers", f"{config.workers} (the topology's per replica)"),
    ]
    notes = [
        "Counted by the fake upstream itself (its /_control endpoint), not by the service.",
        "The service runs as many workers as a replica does; each is a process of its own, "
        "so identical searches arriving together on different workers share one call only "
        "if the service coalesces across processes. The one-worker run beside it shows "
        "coalescing within a process alone.",
    ]
    if single is not None and ours.upstream > distinct >= single.upstream:
        notes.append(
            f"The {ours.upstream - distinct} extra calls come from concurrent identical misses "
            f"landing on different workers: on one worker the same load made {single.upstream} "
            "calls."
        )
    return BenchResult(
        key="upstream_calls",
        title=TITLE,
        headline=(
            f"{ours.upstream} calls for {naive:,} requests ({ours.upstream / naive:.1%} of the "
            f"naive {naive:,}) from {distinct} distinct searches"
        ),
        target=config.target,
        met=ours.upstream == distinct,
        figures=figures,
        notes=notes,
        values={
            "upstream_calls": ours.upstream,
            "distinct": distinct,
            "naive": naive,
            "single_worker_upstream_calls": single.upstream if single else ours.upstream,
        },
    )
