"""`ops local fault`: game days on a local instance, while it runs.

    ops local fault jsearch|theirstack MODE   MODE: healthy, slow, errors, rate-limited,
                                             quota-low, malformed or unreachable
    ops local fault postgres|redis|proxy stop|start

A source's fault switches its stand-in (infra/standins: sources without a key
in `.env`); a source with a real key is refused. `unreachable` scales the
stand-in's service to 0 tasks, so its name resolves to nothing, as a lost host
would; `healthy` brings it back and resets it. Postgres and Redis stop and start
as swarm services scaled to 0 and back (start waits until healthy); so does the
proxy, the stack's one way in, whose loss is JobSearchApiDown.

Each fault says what a search meets, which alert (infra/alerts.py) should fire
and which runbook to open. Searches the cache holds keep answering from it:
search for something new to see a fault.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from typing import Any, cast

from infra.alerts import ALERTS
from infra.local.runner import LocalRunner
from infra.local.standin_control import control_standin, scale_service
from infra.ops.cli import Command, OpsError
from infra.ops.local_stack import failures_as_ops_errors, open_runner
from infra.standins import KEY_SETTINGS, SOURCES, Source
from infra.topology import standin_role

# Added before each answer by `slow`: well inside UPSTREAM_TIMEOUT_SECONDS' default (10).
SLOW_SECONDS = 5.0
# What `rate-limited` asks the service to wait, in seconds.
RETRY_AFTER_SECONDS = 30
# What `quota-low` reports left: under /ready's QUOTA_LOW_BELOW (50).
LOW_QUOTA = 7
DATASTORES = ("postgres", "redis")
# Services that stop and start: the datastores, and the proxy (the public URL's only door).
STOPPABLE = (*DATASTORES, "proxy")


@dataclass(frozen=True)
class Fault:
    effect: str  # what a search (or /ready) meets meanwhile
    alert: str | None  # infra/alerts.py's name, or None when no alert should fire
    behaviour: dict[str, Any] | None = None  # the stand-in's /_control settings


SOURCE_FAULTS: dict[str, Fault] = {
    "healthy": Fault("searches answer 200 with sample listings again", None, {}),
    "slow": Fault(
        f"every answer comes {SLOW_SECONDS:.0f}s late: searches are that much slower",
        None,
        {"latency_seconds": SLOW_SECONDS},
    ),
    "errors": Fault(
        "the source answers 500: searches answer 502 upstream_error after the retries, and "
        "after 5 in a row its circuit opens (503 upstream_unavailable, /ready degraded)",
        "JobSearchApiDegraded",
        {"default": "server_error"},
    ),
    "rate-limited": Fault(
        f"the source answers 429 with Retry-After: {RETRY_AFTER_SECONDS}: searches answer "
        "503 upstream_rate_limited with Retry-After, and the circuit opens after 5",
        "JobSearchApiDegraded",
        {"default": "rate_limited", "retry_after": RETRY_AFTER_SECONDS},
    ),
    "quota-low": Fault(
        f"answers are good but report {LOW_QUOTA} requests left on the plan: /ready's "
        "checks.quota turns low",
        "JobSearchUpstreamQuotaLow",
        {"quota_remaining": LOW_QUOTA},
    ),
    "malformed": Fault(
        "the source answers 200 with broken JSON: searches answer 502 "
        "upstream_malformed_response, and the circuit opens after 5",
        "JobSearchApiDegraded",
        {"default": "malformed_json"},
    ),
    "unreachable": Fault(
        "the source's host is gone (its stand-in has 0 tasks): searches answer 502 "
        "upstream_unreachable, and the circuit opens after 5",
        "JobSearchApiDegraded",
    ),
}
DATASTORE_FAULTS: dict[str, Fault] = {
    "stop": Fault(
        "/ready answers degraded; searches still work (Postgres: no shared cache; "
        "Redis: the rate limit is counted per process)",
        "JobSearchApiDegraded",
    ),
    "start": Fault("back and healthy: /ready answers ready once it checks again", None),
}
PROXY_FAULTS: dict[str, Fault] = {
    "stop": Fault(
        "nothing answers the public URL (connection refused): /health fails, every search "
        "fails; the replicas run on behind it",
        "JobSearchApiDown",
    ),
    "start": Fault("back: the public URL answers once the proxy's health check passes", None),
}


def fault_for(target: str, mode: str) -> Fault:
    """What `ops local fault TARGET MODE` does (argparse has checked both)."""
    if target == "proxy":
        return PROXY_FAULTS[mode]
    if target in DATASTORES:
        return DATASTORE_FAULTS[mode]
    return SOURCE_FAULTS[mode]


def _fault(args: argparse.Namespace) -> int:
    target: str = args.fault_command
    mode: str = args.mode
    if target == "theirstack" and mode == "quota-low":
        raise OpsError(
            "TheirStack reports no quota (no x-ratelimit-requests-remaining header: that is "
            "RapidAPI's, so JSearch's), so the service cannot see it run low and "
            "JobSearchUpstreamQuotaLow watches JSearch only; try `ops local fault jsearch "
            "quota-low`"
        )
    with failures_as_ops_errors():
        runner = open_runner(args.env)
        runner.require_running()
        fault = fault_for(target, mode)
        if target in STOPPABLE:
            scale_service(runner, target, 0 if mode == "stop" else 1)
        else:
            _switch_source(runner, cast(Source, target), mode, fault)
    report = _report(args.env, target, mode, fault)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{target} {mode}: {fault.effect}")
        if fault.alert:
            print(f"alert to expect: {fault.alert}; runbook: {report['runbook']}")
        else:
            print("alert to expect: none")
        if report["undo"]:
            print(f"undo: {report['undo']}")
    return 0


def _switch_source(runner: LocalRunner, source: Source, mode: str, fault: Fault) -> None:
    if source not in runner.config.sample_sources:
        raise OpsError(
            f"{source} is live: {KEY_SETTINGS[source]} comes from .env, so no stand-in runs "
            "for it and a fault would hit the real API. Faults play on stand-ins only: "
            f"remove {KEY_SETTINGS[source]} from .env and run `make local` to get one"
        )
    role = standin_role(source)
    if mode == "unreachable":
        scale_service(runner, role, 0)
        return
    service = runner.service(role)
    if service is not None and service.attrs["Spec"]["Mode"]["Replicated"]["Replicas"] == 0:
        scale_service(runner, role, 1)
    # Each fault starts from a healthy stand-in: faults replace each other, never stack.
    control_standin(runner, source, {"reset": True, source: fault.behaviour or {}})


def _report(environment: str, target: str, mode: str, fault: Fault) -> dict[str, Any]:
    known = {alert.name for alert in ALERTS}
    if fault.alert is not None and fault.alert not in known:
        raise OpsError(f"{fault.alert} is not an alert of infra/alerts.py")
    undo = {"stop": "start", "start": None, "healthy": None}.get(mode, "healthy")
    env = "" if environment == "local" else f" --env {environment}"
    return {
        "environment": environment,
        "target": target,
        "mode": mode,
        **{key: value for key, value in asdict(fault).items() if key != "behaviour"},
        "runbook": f"runbooks/{fault.alert}.md" if fault.alert else None,
        "undo": f"ops local{env} fault {target} {undo}" if undo else None,
    }


def _source_modes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("mode", choices=tuple(SOURCE_FAULTS), help="what it does from now")


def _stop_start(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("mode", choices=("stop", "start"), help="stop or start it")


COMMAND = Command(
    "fault",
    help="switch a stand-in's behaviour, or stop/start Postgres, Redis or the proxy (game days)",
    description=__doc__,
    subcommands=(
        *(
            Command(
                source,
                help=f"the {source} stand-in",
                arguments=_source_modes,
                json=True,
                run=_fault,
            )
            for source in SOURCES
        ),
        *(
            Command(name, help=f"the {name} service", arguments=_stop_start, json=True, run=_fault)
            for name in STOPPABLE
        ),
    ),
    subcommand_metavar="TARGET",
)
