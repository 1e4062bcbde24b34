"""5. Footprint: image size, cold start to healthy, RSS per worker after 1,000 requests.

Each compared with the bare FastAPI app of bench/bare_app.py where a ratio
makes sense:
- RSS: both apps on the host with the topology's 2 workers, after the same
  1,000 requests (Zipf-drawn searches: misses, coalesced waits and hits);
- cold start: the service image started as the topology runs a replica (its
  hardening, limits, health check and settings), against the same image
  running the bare app (mounted read-only), in alternating
  rounds: time from `start` to the first 200 from /health, and to Docker's
  `healthy` with the topology's check;
- image size: the service image against the Python base it is built on.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import httpx
from docker.models.containers import Container

from bench.environment import BenchEnvironment
from bench.report import BenchError, BenchResult, median
from bench.upstream_calls import UpstreamCallsConfig, draw
from harness.load import Call, require_all_ok, run_calls
from harness.processes import Server, rss_kib
from infra.swarm import engine_spec
from infra.topology import SERVICE_PORT, Images, TopologySpec, describe

BARE_APP = Path(__file__).with_name("bare_app.py")
IMAGE_TAG = "jobsearch-api:bench"
MIB = 1024 * 1024


TITLE = "Footprint"


@dataclass(frozen=True)
class FootprintConfig:
    requests: int = 1000
    distinct: int = 50
    concurrency: int = 16
    workers: int = 2
    cold_start_rounds: int = 3
    cold_start_timeout_seconds: float = 90.0

    @property
    def target(self) -> str:
        return "report (no target)"

    @classmethod
    def tiny(cls) -> FootprintConfig:
        return cls(requests=60, distinct=6, concurrency=4, cold_start_rounds=1)


@dataclass(frozen=True)
class Memory:
    per_worker_mib: list[float]
    supervisor_mib: float | None

    @property
    def mean_mib(self) -> float:
        return sum(self.per_worker_mib) / len(self.per_worker_mib)


def _memory(server: Server) -> Memory:
    workers = server.worker_pids()
    supervisor = None if workers == [server.process.pid] else server.process.pid
    return Memory(
        per_worker_mib=[rss_kib(pid) / 1024 for pid in workers],
        supervisor_mib=rss_kib(supervisor) / 1024 if supervisor else None,
    )


def _load(config: FootprintConfig) -> list[Call]:
    run_id = uuid.uuid4().hex[:8]
    sequence = draw(UpstreamCallsConfig(requests=config.requests, distinct=config.distinct, seed=7))
    return [
        Call("POST", "/api/jobs/jsearch", {"jobTitle": f"footprint {number} {run_id}"})
        for number in sequence
    ]


def measure_rss(env: BenchEnvironment, config: FootprintConfig) -> tuple[Memory, Memory]:
    """RSS per worker of the service and of the bare app, each after the same requests."""
    env.control_fakes(reset=True)
    calls = _load(config)
    with env.service("footprint-service", workers=config.workers) as service:
        outcomes, _ = run_calls(service.url, calls, concurrency=config.concurrency)
        require_all_ok("service", outcomes)
        ours = _memory(service)
        # The bare app answers with a real search result, as in the cache-hit benchmark.
        answer = httpx.post(f"{service.url}{calls[0].path}", json=calls[0].body, timeout=30)
    payload = env.work_dir / "footprint-payload.json"
    payload.write_text(answer.text)
    with env.app(
        "footprint-bare", "bench.bare_app", workers=config.workers, BENCH_PAYLOAD_FILE=str(payload)
    ) as bare:
        outcomes, _ = run_calls(bare.url, calls, concurrency=config.concurrency)
        require_all_ok("bare app", outcomes)
        theirs = _memory(bare)
    return ours, theirs


@dataclass(frozen=True)
class ColdStart:
    answered_seconds: float
    healthy_seconds: float


@dataclass(frozen=True)
class ImageSizes:
    service_bytes: int
    base_bytes: int
    base: str


def replica_spec(image: str, *, name: str, workers: int) -> dict[str, Any]:
    """The engine spec of the topology's service (infra/swarm.py), one replica, alone:
    no network, no secrets, no datastores; labelled so that `ops local` ignores it."""
    spec = TopologySpec(
        environment="local", images=Images(service=image), replicas=1, workers=workers
    )
    topology = describe(spec)
    engine = engine_spec(topology.api, topology.network, secrets={}, configs={})
    engine["Name"] = name
    labels = {"org.jobsearch.project": "jobsearch", "org.jobsearch.role": "bench"}
    engine["Labels"] = labels
    engine["TaskTemplate"]["ContainerSpec"]["Labels"] = labels
    engine["TaskTemplate"]["Networks"] = []
    engine["TaskTemplate"]["RestartPolicy"] = {"Condition": "none"}
    return engine


def replica_arguments(image: str, *, name: str, workers: int) -> dict[str, Any]:
    """`containers.create` arguments for the same replica as a plain container: the
    engine spec's hardening, limits, health check and settings, property by property."""
    task = replica_spec(image, name=name, workers=workers)["TaskTemplate"]
    container = task["ContainerSpec"]
    limits = task["Resources"]["Limits"]
    check = container["Healthcheck"]
    return {
        "name": name,
        "environment": dict(entry.split("=", 1) for entry in container["Env"]),
        "user": container["User"],
        "labels": container["Labels"],
        "healthcheck": {
            "test": check["Test"],
            "interval": check["Interval"],
            "timeout": check["Timeout"],
            "retries": check["Retries"],
            "start_period": check["StartPeriod"],
        },
        "mem_limit": limits["MemoryBytes"],
        "nano_cpus": limits["NanoCPUs"],
        "pids_limit": limits["Pids"],
        "read_only": container["ReadOnly"],
        "cap_drop": container["CapabilityDrop"],
        "tmpfs": {
            mount["Target"]: f"size={mount['TmpfsOptions']['SizeBytes']}"
            for mount in container["Mounts"]
            if mount["Type"] == "tmpfs"
        },
    }


@contextlib.contextmanager
def _started(
    client: docker.DockerClient, image: str, *, bare: bool, name: str, workers: int
) -> Iterator[tuple[Container, float]]:
    arguments = replica_arguments(image, name=name, workers=workers)
    if bare:
        arguments["entrypoint"] = ["/opt/venv/bin/python", "/bench/bare_app.py"]
        arguments["volumes"] = {str(BARE_APP): {"bind": "/bench/bare_app.py", "mode": "ro"}}
    container = client.containers.create(image, **arguments)
    try:
        started = time.monotonic()
        container.start()
        yield container, started
    finally:
        container.remove(force=True)


def _cold_start(
    client: docker.DockerClient, image: str, *, bare: bool, timeout: float, workers: int
) -> ColdStart:
    kind = "bare" if bare else "service"
    name = f"jobsearch-bench-coldstart-{kind}-{uuid.uuid4().hex[:6]}"
    with _started(client, image, bare=bare, name=name, workers=workers) as (container, started):
        answered: float | None = None
        deadline = started + timeout
        while time.monotonic() < deadline:
            container.reload()
            state = container.attrs["State"]
            if state.get("Status") != "running":
                logs = container.logs(tail=5).decode(errors="replace")
                raise BenchError(f"{name} stopped during its cold start: {logs.strip()[-300:]}")
            if answered is None:
                address = container.attrs["NetworkSettings"].get("IPAddress")
                with contextlib.suppress(httpx.HTTPError):
                    url = f"http://{address}:{SERVICE_PORT}/health"
                    if address and httpx.get(url, timeout=0.5).status_code == 200:
                        answered = time.monotonic() - started
            if (state.get("Health") or {}).get("Status") == "healthy" and answered is not None:
                return ColdStart(answered, time.monotonic() - started)
            time.sleep(0.02)
    raise BenchError(f"{name} was not healthy within {timeout:.0f}s")


def swarm_cold_start(client: docker.DockerClient, image: str, *, timeout: float) -> float:
    """Seconds from creating a one-replica service to its task running, which the engine
    declares only once the task's health check passed (the same check as a container's)."""
    name = f"jobsearch-bench-swarm-{uuid.uuid4().hex[:6]}"
    spec = replica_spec(image, name=name, workers=2)
    if (client.info().get("Swarm") or {}).get("LocalNodeState") != "active":
        client.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")
    started = time.monotonic()
    created = client.api.create_service(
        task_template=spec["TaskTemplate"], name=name, labels=spec["Labels"], mode=spec["Mode"]
    )
    service = client.services.get(created["ID"])
    try:
        while time.monotonic() < started + timeout:
            states = [task["Status"]["State"] for task in service.tasks()]
            if "running" in states:
                return time.monotonic() - started
            if any(state in ("failed", "rejected") for state in states):
                raise BenchError(f"{name}'s task failed during its cold start: {states}")
            time.sleep(0.02)
    finally:
        service.remove()
    raise BenchError(f"{name} was not running within {timeout:.0f}s")


def measure_images(
    config: FootprintConfig,
) -> tuple[ImageSizes, list[ColdStart], list[ColdStart], list[float]]:
    from infra.local.engine import ensure_engine
    from infra.local.images import build_service_image, debian_base
    from infra.local.state import STATE_ROOT

    client = ensure_engine(STATE_ROOT)
    base = debian_base(client, STATE_ROOT / "build")
    image_id = build_service_image(client, base_image=base, tag=IMAGE_TAG)
    sizes = ImageSizes(
        service_bytes=int(client.images.get(image_id).attrs["Size"]),
        base_bytes=int(client.images.get(base).attrs["Size"]),
        base=base,
    )
    service_runs: list[ColdStart] = []
    bare_runs: list[ColdStart] = []
    swarm_runs: list[float] = []
    for round_number in range(config.cold_start_rounds):
        order = [False, True] if round_number % 2 == 0 else [True, False]
        for bare in order:
            result = _cold_start(
                client,
                image_id,
                bare=bare,
                timeout=config.cold_start_timeout_seconds,
                workers=config.workers,
            )
            (bare_runs if bare else service_runs).append(result)
        swarm_runs.append(
            swarm_cold_start(client, image_id, timeout=config.cold_start_timeout_seconds)
        )
    return sizes, service_runs, bare_runs, swarm_runs


def run(
    env: BenchEnvironment, config: FootprintConfig | None = None, *, images: bool = True
) -> BenchResult:
    config = config or FootprintConfig()
    ours, theirs = measure_rss(env, config)
    rss_ratio = ours.mean_mib / theirs.mean_mib
    figures = [
        (
            f"RSS per worker after {config.requests:,} requests, service / bare",
            f"**{ours.mean_mib:.1f} MiB / {theirs.mean_mib:.1f} MiB = {rss_ratio:.2f}x**",
        ),
        (
            "Each worker, service",
            ", ".join(f"{value:.1f} MiB" for value in ours.per_worker_mib),
        ),
    ]
    if ours.supervisor_mib is not None:
        figures.append(("uvicorn supervisor process, service", f"{ours.supervisor_mib:.1f} MiB"))
    headline = f"RSS per worker {rss_ratio:.2f}x the bare app's"
    values = {"rss_ratio": rss_ratio, "service_rss_mib": ours.mean_mib}
    notes = [
        f"RSS is measured on the host (VmRSS of each uvicorn worker) with {config.workers} "
        "workers, after the same requests to both apps: Zipf-drawn searches over "
        f"{config.distinct} distinct ones, so the service's caches hold real entries.",
    ]
    if images:
        sizes, service_starts, bare_starts, swarm_starts = measure_images(config)
        swarm_healthy = median(swarm_starts)
        answered = median([run.answered_seconds for run in service_starts])
        bare_answered = median([run.answered_seconds for run in bare_starts])
        healthy = median([run.healthy_seconds for run in service_starts])
        bare_healthy = median([run.healthy_seconds for run in bare_starts])
        size_ratio = sizes.service_bytes / sizes.base_bytes
        start_ratio = answered / bare_answered
        headline += (
            f"; cold start {start_ratio:.2f}x; image {sizes.service_bytes / MIB:.0f} MiB "
            f"({size_ratio:.2f}x its base)"
        )
        figures += [
            (
                "Cold start to first /health 200, service / bare (median)",
                f"**{answered:.2f} s / {bare_answered:.2f} s = {start_ratio:.2f}x**",
            ),
            (
                "Cold start to Docker `healthy`, service / bare (median)",
                f"{healthy:.2f} s / {bare_healthy:.2f} s",
            ),
            (
                "Cold start to healthy, swarm task / plain container, same replica (median)",
                f"{swarm_healthy:.2f} s / {healthy:.2f} s = {swarm_healthy / healthy:.2f}x",
            ),
            (
                "Image size, service image / its Python base",
                f"**{sizes.service_bytes / MIB:.0f} MiB / {sizes.base_bytes / MIB:.0f} MiB "
                f"= {size_ratio:.2f}x** (the service adds "
                f"{(sizes.service_bytes - sizes.base_bytes) / MIB:.0f} MiB)",
            ),
        ]
        values |= {
            "cold_start_ratio": start_ratio,
            "swarm_cold_start_ratio": swarm_healthy / healthy,
            "image_mib": sizes.service_bytes / MIB,
            "image_to_base_ratio": size_ratio,
        }
        notes += [
            f"Cold start: {config.cold_start_rounds} alternating rounds of the service image "
            "and of the same image running bench/bare_app.py, both created as the topology "
            "runs a replica (infra/topology.py through infra/swarm.py's engine spec: "
            f"read-only root, non-root, no capabilities, its CPU and memory limits, "
            f"{config.workers} workers). `healthy` uses the topology's check, so it lands on "
            "the check's interval; the first 200 is polled every 20 ms. The swarm figure "
            "creates a one-replica service from the same engine spec and times it until "
            "its task runs, which the engine declares once the health check passed.",
            f"The base is `{sizes.base}`: Debian bookworm with Debian's Python 3.11, built "
            "here by infra/local/images.py because no registry is reachable; the official "
            "`python:3.11-slim-bookworm` base is not available on this machine to compare.",
        ]
    return BenchResult(
        key="footprint",
        title=TITLE,
        headline=headline,
        target=config.target,
        met=None,
        figures=figures,
        notes=notes,
        values=values,
    )
