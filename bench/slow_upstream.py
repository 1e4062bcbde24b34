"""2. A slow upstream must not block the service.

The fake JSearch answers every search after 2 s. 64 distinct searches (all
cache misses) go out at once, while /health is polled on a fixed schedule
from a process of its own. The same runs against the baseline written the way the old app
worked (bench/old_app.py: blocking `requests` inside `async def`), with the
same uvicorn options and worker count. Headline: baseline wall time over the
service's; and /health p99 during the service's run.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from bench.environment import BenchEnvironment
from bench.report import BenchError, BenchResult, percentile
from harness.load import Call, Outcome, require_all_ok, run_calls
from harness.poller import HealthPoller
from harness.processes import Server

# A /health above this on an idle server is not the app: see the note in run().
NAGLE_FLOOR_MS = 30.0


TITLE = "Slow upstream does not block"


@dataclass(frozen=True)
class SlowUpstreamConfig:
    searches: int = 64
    upstream_delay_seconds: float = 2.0
    # The topology's workers per replica (infra/topology.py), for both apps.
    workers: int = 2
    health_interval_seconds: float = 0.01
    idle_seconds: float = 2.0
    target_speedup: float = 20.0
    target_health_p99_ms: float = 50.0

    @property
    def target(self) -> str:
        return f">= {self.target_speedup:.0f}x, /health p99 < {self.target_health_p99_ms:.0f} ms"

    @classmethod
    def tiny(cls) -> SlowUpstreamConfig:
        return cls(searches=4, upstream_delay_seconds=0.2, workers=1, idle_seconds=0.3)


@dataclass(frozen=True)
class Run:
    wall_seconds: float
    outcomes: list[Outcome]
    health_ms: list[float]
    health_failures: list[str]
    upstream_calls: int
    # /health on the same server with nothing else to do, just before the run.
    idle_health_ms: list[float]
    cpu_seconds: float

    @property
    def health_p99_ms(self) -> float:
        return percentile(self.health_ms, 0.99)

    @property
    def health_max_ms(self) -> float:
        return max(self.health_ms)

    def health_figure(self, value_ms: float) -> str:
        """A /health latency as measured; a poll that timed out gives only a lower bound."""
        if self.health_failures and value_ms >= POLL_TIMEOUT_SECONDS * 1000:
            return f">= {POLL_TIMEOUT_SECONDS * 1000:,.0f} ms (timed out)"
        return f"{value_ms:,.0f} ms"


# A /health poll given up after this long counts as failed; its latency is a lower bound.
POLL_TIMEOUT_SECONDS = 60.0


def _searches(count: int) -> list[Call]:
    # A fresh word per run: every search is a miss, whatever ran before.
    run_id = uuid.uuid4().hex[:8]
    return [
        Call("POST", "/api/jobs/jsearch", {"jobTitle": f"slow search {run_id} {number}"})
        for number in range(count)
    ]


def _measure(env: BenchEnvironment, server: Server, config: SlowUpstreamConfig) -> Run:
    with HealthPoller(
        f"{server.url}/health", interval_seconds=config.health_interval_seconds
    ) as idle:
        time.sleep(config.idle_seconds)
    calls_before = env.upstream_calls()
    cpu_before = server.cpu_seconds()
    with HealthPoller(
        f"{server.url}/health",
        interval_seconds=config.health_interval_seconds,
        timeout=POLL_TIMEOUT_SECONDS,
    ) as poller:
        outcomes, wall = run_calls(
            server.url,
            _searches(config.searches),
            concurrency=config.searches,
            timeout=config.searches * config.upstream_delay_seconds + 60,
        )
    cpu = server.cpu_seconds() - cpu_before
    require_all_ok(server.name, outcomes)
    if not poller.latencies_ms:
        raise BenchError(f"{server.name}: /health was never polled during the run")
    return Run(
        wall_seconds=wall,
        outcomes=outcomes,
        health_ms=poller.latencies_ms,
        health_failures=poller.failures,
        upstream_calls=env.upstream_calls() - calls_before,
        idle_health_ms=idle.latencies_ms,
        cpu_seconds=cpu,
    )


def run(env: BenchEnvironment, config: SlowUpstreamConfig | None = None) -> BenchResult:
    config = config or SlowUpstreamConfig()
    env.control_fakes(
        reset=True, jsearch={"default": "slow", "delay_seconds": config.upstream_delay_seconds}
    )
    try:
        with env.service("slow-upstream-service", workers=config.workers) as service:
            ours = _measure(env, service, config)
        with env.app("slow-upstream-old-app", "bench.old_app", workers=config.workers) as old:
            baseline = _measure(env, old, config)
    finally:
        env.control_fakes(reset=True)

    for name, measured in (("service", ours), ("baseline", baseline)):
        if measured.upstream_calls != config.searches:
            raise BenchError(
                f"{name} made {measured.upstream_calls} upstream calls for "
                f"{config.searches} distinct searches"
            )
    if ours.health_failures:
        raise BenchError(f"/health failed during the service's run: {ours.health_failures[:3]}")
    speedup = baseline.wall_seconds / ours.wall_seconds
    p99 = ours.health_p99_ms
    idle_p50, idle_p99 = (percentile(ours.idle_health_ms, q) for q in (0.5, 0.99))
    notes = [
        f"The fake upstream answers every search after {config.upstream_delay_seconds:.0f} s. "
        f"All {config.searches} searches are distinct, so every one is a cache miss and "
        "an upstream call, for both apps.",
        "The baseline (bench/old_app.py) calls the upstream with blocking `requests` inside "
        "`async def`, as the old app did: each worker answers nothing else, not even "
        "/health, until its upstream call returns.",
        "/health is polled on a fixed schedule (one GET every "
        f"{config.health_interval_seconds * 1000:.0f} ms, whether or not the previous one "
        "has answered) by a process of its own, from before the first search until the "
        "last answer; each latency counts from when the poll was due.",
    ]
    if config.workers > 1 and idle_p50 >= NAGLE_FLOOR_MS:
        notes.append(
            f"/health takes {idle_p50:.0f} ms even on the idle service: with more than one "
            "worker, uvicorn passes its workers a listening socket whose protocol is unset, "
            "so asyncio never turns TCP_NODELAY on and each response on a kept-alive "
            "connection waits for the client's delayed ACK (~40 ms; uvicorn issue #3149). "
            "The same floor is under every /health figure of both apps here."
        )
    met = speedup >= config.target_speedup and p99 < config.target_health_p99_ms
    return BenchResult(
        key="slow_upstream",
        title=TITLE,
        headline=(
            f"{speedup:.1f}x faster than the blocking baseline; /health p99 {p99:.1f} ms "
            f"(baseline: {baseline.health_figure(baseline.health_p99_ms)})"
        ),
        target=config.target,
        met=met,
        figures=[
            ("Speed-up, baseline wall time / service wall time", f"**{speedup:.1f}x**"),
            (
                f"Wall time for {config.searches} concurrent searches, service / baseline",
                f"{ours.wall_seconds:.2f} s / {baseline.wall_seconds:.2f} s",
            ),
            (
                "Ideal wall time (one upstream delay)",
                f"{config.upstream_delay_seconds:.1f} s: the service took "
                f"{ours.wall_seconds / config.upstream_delay_seconds:.2f}x that",
            ),
            (
                "/health p99 during the run, service / baseline",
                f"**{p99:.1f} ms** / {baseline.health_figure(baseline.health_p99_ms)}",
            ),
            (
                "/health max during the run, service / baseline",
                f"{ours.health_max_ms:.1f} ms / {baseline.health_figure(baseline.health_max_ms)}",
            ),
            (
                "/health p50 / p99 on the idle server just before, service",
                f"{idle_p50:.1f} ms / {idle_p99:.1f} ms",
            ),
            (
                "/health p50 during the run, service / baseline",
                f"{percentile(ours.health_ms, 0.5):.1f} ms / "
                + baseline.health_figure(percentile(baseline.health_ms, 0.5)),
            ),
            (
                "Service CPU per search (all its processes, during the run)",
                f"{ours.cpu_seconds / config.searches * 1000:.1f} ms",
            ),
            (
                "/health polls, service / baseline",
                f"{len(ours.health_ms):,} / {len(baseline.health_ms):,}",
            ),
            (
                f"/health polls unanswered in {POLL_TIMEOUT_SECONDS:.0f} s, service / baseline",
                f"{len(ours.health_failures)} / {len(baseline.health_failures):,}",
            ),
            (
                "Upstream calls, service / baseline",
                f"{ours.upstream_calls} / {baseline.upstream_calls}",
            ),
            ("uvicorn workers (each app)", str(config.workers)),
        ],
        notes=notes,
        values={
            "speedup": speedup,
            "health_p99_ms": p99,
            "service_wall_seconds": ours.wall_seconds,
            "baseline_wall_seconds": baseline.wall_seconds,
        },
    )
