"""4. Rollout: failed requests during rolling replacements on the local topology.

The whole topology of infra/topology.py runs on the local Docker engine
(infra/local: proxy, two replicas, Redis, Postgres, plus the fake upstreams),
as the suite's "test" instance. A steady load of searches and /health goes
through the proxy while the runner rolls the replicas to another image and
back, until at least 2,000 requests have been sent during rollouts. Every
answer but a 200 and every transport error counts as a failure.

Side by side, under the same load: the simple alternative (stop the replicas,
then start the new ones, as a plain `docker compose up` with a new image does),
and forced proxy reloads with no replica changing, which tell how much of any
failure a rollout's one proxy reload accounts for.

The instance is the suite's: do not run `make bench` while `make test` runs.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bench.report import BenchResult
from harness.background import BackgroundLoad
from harness.images import build_test_images
from harness.instance import prepare_test_instance
from harness.load import Call
from infra.local.engine import ensure_engine
from infra.local.runner import FINGERPRINT_LABEL, LocalRunner
from infra.local.state import STATE_ROOT

REQUESTS_TARGET = 2000


TITLE = "Rollout without failed requests"


@dataclass(frozen=True)
class RolloutConfig:
    min_requests: int = REQUESTS_TARGET
    concurrency: int = 16
    max_rollouts: int = 6
    baseline: bool = True

    @property
    def target(self) -> str:
        return f"0 failed and 0 resent of >= {self.min_requests:,}"

    @classmethod
    def tiny(cls) -> RolloutConfig:
        return cls(min_requests=100, concurrency=4, max_rollouts=1, baseline=False)


@dataclass(frozen=True)
class Replacement:
    image: str
    requests: int
    failures: int
    seconds: float
    resent: int = 0


def load_calls() -> list[Call]:
    """Mostly cached searches on both sources, and /health, as the frontend and probes send."""
    searches = [
        Call("POST", f"/api/jobs/{source}", {"jobTitle": f"rollout role {number}"})
        for number in range(10)
        for source in ("jsearch", "theirstack")
    ]
    return [*searches, Call("GET", "/health")]


@dataclass
class Measured:
    replacements: list[Replacement]
    total: int
    failures: list[str]
    statuses: dict[int, int]
    resent: list[str]

    @property
    def during(self) -> int:
        return sum(item.requests for item in self.replacements)

    @property
    def failed_during(self) -> int:
        return sum(item.failures for item in self.replacements)

    @property
    def resent_during(self) -> int:
        return sum(item.resent for item in self.replacements)

    @classmethod
    def of(cls, load: BackgroundLoad, replacements: list[Replacement]) -> Measured:
        tally = load.tally
        return cls(
            replacements, tally.total, tally.failures, dict(tally.statuses), list(tally.resent)
        )


def _replace(load: BackgroundLoad, image: str, action: Callable[[], object]) -> Replacement:
    """Run `action` under the load; what the load saw while it ran."""
    before, failed_before, resent_before = load.total, load.failed, load.resent
    started = time.monotonic()
    action()
    return Replacement(
        image=image,
        requests=load.total - before,
        failures=load.failed - failed_before,
        seconds=time.monotonic() - started,
        resent=load.resent - resent_before,
    )


def _under_load(
    url: str, config: RolloutConfig, replacements_of: Callable[[BackgroundLoad], list[Replacement]]
) -> Measured:
    """Steady load through the proxy; `replacements_of` runs under it, then a little more
    load follows, so that requests to whatever replaced the replicas must succeed too."""
    with BackgroundLoad(url, load_calls(), concurrency=config.concurrency, resend=True) as load:
        load.wait_for(50)
        replacements = replacements_of(load)
        load.wait_for(load.total + 50)
    return Measured.of(load, replacements)


def measure_rollouts(
    runner: LocalRunner, url: str, images: list[str], config: RolloutConfig
) -> Measured:
    """Roll through `images` in turn under load until `min_requests` were sent during rollouts."""

    def rollouts(load: BackgroundLoad) -> list[Replacement]:
        replacements: list[Replacement] = []
        while len(replacements) < config.max_rollouts and (
            not replacements or sum(item.requests for item in replacements) < config.min_requests
        ):
            image = images[len(replacements) % len(images)]
            replacements.append(_replace(load, image, functools.partial(runner.rollout, image)))
        return replacements

    return _under_load(url, config, rollouts)


def measure_stop_then_start(
    runner: LocalRunner, url: str, image: str, config: RolloutConfig
) -> Measured:
    """The simple alternative: stop every replica, then start the new ones."""

    def stop_then_start() -> None:
        spec = runner.desired_specs(image)["api"]
        spec["UpdateConfig"] = {**spec["UpdateConfig"], "Order": "stop-first", "Parallelism": 0}
        spec["Labels"][FINGERPRINT_LABEL] += "-stop-then-start"
        runner.apply("api", spec)

    return _under_load(url, config, lambda load: [_replace(load, image, stop_then_start)])


@dataclass(frozen=True)
class Topology:
    runner: LocalRunner
    url: str
    images: list[str]  # the service image, then a second image of the same app


@contextlib.contextmanager
def local_topology() -> Iterator[Topology]:
    """The suite's "test" instance of the topology, from scratch, removed afterwards.

    Prepared by the suite's own helper, with the rate limit raised out of reach.
    """
    client = ensure_engine(STATE_ROOT)
    images = build_test_images(client)
    runner = prepare_test_instance(
        client,
        images,
        settings={"RATE_LIMIT": "1000000/second"},
        say=lambda line: print(f"  [local] {line}"),
    )
    try:
        runner.up(images.service)
        url = runner.topology(images.service).public_url
        yield Topology(runner, url, [images.variant, images.service])
    finally:
        runner.down(volumes=True)


def result(ours: Measured, baseline: Measured | None, config: RolloutConfig) -> BenchResult:
    replacements = len(ours.replacements)
    failed = len(ours.failures)
    figures = [
        (
            "Failed requests / requests sent during rollouts",
            f"**{ours.failed_during} / {ours.during:,}**",
        ),
        ("Failed requests / all requests of the run", f"{failed} / {ours.total:,}"),
        ("Rolling replacements", str(replacements)),
        (
            "Each replacement: requests, failures, seconds",
            "; ".join(
                f"{item.requests:,}, {item.failures}, {item.seconds:.1f} s"
                for item in ours.replacements
            ),
        ),
        ("Answers by status", ", ".join(f"{k}: {v:,}" for k, v in sorted(ours.statuses.items()))),
        (
            "Resent once during rollouts after the proxy closed a kept-alive connection "
            "unanswered (nothing reloads the proxy any more: the target is 0)",
            f"{ours.resent_during:,}",
        ),
    ]
    notes = [
        "Load: "
        f"{config.concurrency} clients back to back through the proxy (Caddy), cycling "
        "through 20 searches on both sources (cached after their first call) and /health.",
        "A rolling replacement is `LocalRunner.rollout`: a service update that the engine "
        "runs start-first, one task at a time; a new task joins the swarm's DNS once its "
        "health check passes, an old one leaves it before SIGTERM and then drains. Caddy "
        "re-resolves `tasks.<service>` every second and is never reloaded.",
    ]
    if ours.failures:
        notes.append(f"First failures: {'; '.join(ours.failures[:3])}")
    values: dict[str, float] = {
        "failed_during": ours.failed_during,
        "requests_during": ours.during,
        "resent_during": ours.resent_during,
    }
    headline = (
        f"{ours.failed_during} failed of {ours.during:,} requests during "
        f"{replacements} rolling replacements"
    )
    if baseline is not None:
        rate = baseline.failed_during / baseline.during if baseline.during else 0.0
        figures.append(
            (
                "Baseline, stop then start: failed / sent during the replacement",
                f"{baseline.failed_during:,} / {baseline.during:,} ({rate:.0%}), "
                f"{baseline.replacements[0].seconds:.1f} s",
            )
        )
        headline += f" (stop-then-start: {baseline.failed_during:,} of {baseline.during:,})"
        values["baseline_failed"] = baseline.failed_during
        values["baseline_requests"] = baseline.during
        notes.append(
            "The baseline stops both replicas and then starts the new ones under the same "
            "load (the same service update, stop-first with no parallelism limit); the proxy "
            "retries for up to 10 s (lb_try_duration) and then fails requests."
        )
    met = (
        ours.failed_during == 0
        and failed == 0
        and ours.resent_during == 0
        and ours.during >= config.min_requests
    )
    return BenchResult(
        key="rollout",
        title=TITLE,
        headline=headline,
        target=config.target,
        met=met,
        figures=figures,
        notes=notes,
        values=values,
    )


def run(config: RolloutConfig | None = None) -> BenchResult:
    config = config or RolloutConfig()
    with local_topology() as topology:
        ours = measure_rollouts(topology.runner, topology.url, topology.images, config)
        baseline = (
            measure_stop_then_start(
                topology.runner,
                topology.url,
                # The image that is not running now: a real replacement.
                topology.images[len(ours.replacements) % len(topology.images)],
                config,
            )
            if config.baseline
            else None
        )
    return result(ours, baseline, config)
