"""The benchmarks' shared environment (fake upstreams, a cache database, Redis), once per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.environment import BenchEnvironment, bench_environment


@pytest.fixture(scope="module")
def bench_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BenchEnvironment]:
    work_dir: Path = tmp_path_factory.mktemp("bench")
    with bench_environment(work_dir) as env:
        yield env
