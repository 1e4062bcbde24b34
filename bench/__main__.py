"""`python -m bench` (`make bench`): run the benchmarks and rewrite docs/benchmarks.md.

    python -m bench                       all five; rewrites docs/benchmarks.md
    python -m bench --only cache_hit      some of them; prints, writes nothing
    python -m bench --tiny --output F     every code path in seconds (what tests/bench runs)

Needs the machine's PostgreSQL and Redis (started when stopped, as the suite
does), wrk (installed from Debian when missing) and, for the rollout and the
image figures, the Docker engine (installed and started when missing). The
rollout uses the suite's "test" topology instance: not while `make test` runs.
"""

from __future__ import annotations

import argparse
import functools
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from bench import cache_hit, footprint, multi_node, rollout, slow_upstream, upstream_calls
from bench.environment import bench_environment
from bench.machine import describe_machine
from bench.report import BenchResult, failed_result, render, write_page, write_raw

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO_ROOT / "docs" / "benchmarks.md"
RAW_RESULTS = REPO_ROOT / "bench" / "results"


# In page order: each benchmark's module (its TITLE, its run) and its configuration
# class (sizes, and the target, which a benchmark that fails to run is reported under).
BENCHMARKS: dict[str, tuple[ModuleType, Any]] = {
    "cache_hit": (cache_hit, cache_hit.CacheHitConfig),
    "slow_upstream": (slow_upstream, slow_upstream.SlowUpstreamConfig),
    "upstream_calls": (upstream_calls, upstream_calls.UpstreamCallsConfig),
    "rollout": (rollout, rollout.RolloutConfig),
    "footprint": (footprint, footprint.FootprintConfig),
    "multi_node": (multi_node, multi_node.MultiNodeConfig),
}
HOST_BENCHMARKS = ("cache_hit", "slow_upstream", "upstream_calls", "footprint")
INTRO = (
    "To reproduce: `make bench` (about 20 minutes on 2 cores). It uses the machine's "
    "PostgreSQL and Redis on 127.0.0.1 (started when stopped), wrk and the Docker engine "
    "(installed when missing), the suite's `test` topology instance for the rollout, and "
    "a swarm of three Docker-in-Docker nodes for the multi-node figure: "
    "not while `make test` runs. Raw figures of each run land in bench/results/ (not "
    "committed)."
)


def _guarded(key: str, config: Any, measure: Callable[[], BenchResult]) -> BenchResult:
    title: str = BENCHMARKS[key][0].TITLE
    print(f"== {key}: {title}", flush=True)
    started = time.monotonic()
    try:
        result = measure()
    except Exception as error:  # reported on the page; the other benchmarks still run
        print(f"   failed: {type(error).__name__}: {error}", flush=True)
        return failed_result(key, title, config.target, error)
    print(f"   {result.headline} -> {result.verdict} ({time.monotonic() - started:.0f} s)")
    return result


def run(selected: Sequence[str], *, tiny: bool) -> list[BenchResult]:
    results: dict[str, BenchResult] = {}
    configs = {
        key: kind.tiny() if tiny else kind()
        for key, (_, kind) in BENCHMARKS.items()
        if key in selected
    }
    host = [key for key in selected if key in HOST_BENCHMARKS]
    if host:
        with bench_environment() as env:
            for key in host:
                module, config = BENCHMARKS[key][0], configs[key]
                results[key] = _guarded(key, config, functools.partial(module.run, env, config))
    if "rollout" in selected:
        config = configs["rollout"]
        results["rollout"] = _guarded("rollout", config, functools.partial(rollout.run, config))
    # Its own swarm of Docker-in-Docker nodes: after the rest, which it would slow down.
    if "multi_node" in selected:
        config = configs["multi_node"]
        results["multi_node"] = _guarded(
            "multi_node", config, functools.partial(multi_node.run, config)
        )
    return [results[key] for key in BENCHMARKS if key in results]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(BENCHMARKS),
        metavar="NAME",
        help=f"run only these ({', '.join(BENCHMARKS)}); nothing is written without --output",
    )
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="tiny loads that only prove the code runs; nothing is written without --output",
    )
    parser.add_argument("--output", type=Path, help=f"the page to write (default {DEFAULT_OUTPUT})")
    args = parser.parse_args(argv)

    selected = list(args.only or BENCHMARKS)
    output: Path | None = args.output
    if output is None and not args.only and not args.tiny:
        output = DEFAULT_OUTPUT
    machine = describe_machine()
    results = run(selected, tiny=args.tiny)
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = "make bench (python -m bench)"
    if arguments:
        command = "python -m bench " + " ".join(shlex.quote(arg) for arg in arguments)
    page = render(results, machine, command, INTRO)
    if output is None:
        print(page)
    else:
        write_page(output, page)
        print(f"wrote {output}")
        raw_dir = RAW_RESULTS if output == DEFAULT_OUTPUT else output.parent
        print(f"raw results: {write_raw(raw_dir, results, machine)}")
    return 0 if all(result.outcome == "measured" for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
