"""What every host benchmark shares: fake upstreams, a cache database, Redis, a work directory.

The service runs as in production (JSON logs at INFO, the Postgres cache, the
Redis-backed rate limit), except that its paid APIs are the fake upstreams of
infra/standins (a real HTTP server on 127.0.0.1, scripted through /_control) and
its rate limit is raised so that the load generator is never refused.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from harness.machine import ensure_postgres, ensure_redis
from harness.postgres import database_name, scratch_database, service_login_url, url_for
from harness.processes import Server, python_module, serve
from harness.servers import free_port
from infra import migrations
from infra.standins import JSEARCH_KEY, THEIRSTACK_KEY

# A database number of its own, so that bench counters never meet the suite's.
REDIS_URL = "redis://127.0.0.1:6379/13"
# Far above anything a benchmark sends: the limit must never answer 429 here.
UNLIMITED_RATE = "1000000/second"


@dataclass
class BenchEnvironment:
    work_dir: Path
    fakes: Server
    database_url: str

    def service_env(
        self, *, workers: int, unset: tuple[str, ...] = (), **overrides: str
    ) -> dict[str, str]:
        env = {
            "APP_ENV": "production",
            "LOG_LEVEL": "INFO",
            "WORKERS": str(workers),
            "RAPID_API_KEY": JSEARCH_KEY,
            "THEIRSTACK_API_KEY": THEIRSTACK_KEY,
            "JSEARCH_BASE_URL": self.fakes.url,
            "THEIRSTACK_BASE_URL": self.fakes.url,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": REDIS_URL,
            "RATE_LIMIT": UNLIMITED_RATE,
            "UPSTREAM_TIMEOUT_SECONDS": "10",
        }
        env.update(overrides)
        for name in unset:
            env.pop(name, None)
        return env

    @contextlib.contextmanager
    def service(
        self, name: str, *, workers: int, unset: tuple[str, ...] = (), **overrides: str
    ) -> Iterator[Server]:
        """`python -m jobsearch`: the same entry point and uvicorn options as the image.

        `unset` leaves settings out (REDIS_URL: the in-memory rate limit)."""
        self.empty_cache()
        env = self.service_env(workers=workers, unset=unset, **overrides)
        with serve(
            name, python_module("jobsearch"), env, log_path=self.work_dir / f"{name}.log"
        ) as server:
            yield server

    @contextlib.contextmanager
    def app(self, name: str, module: str, *, workers: int, **env: str) -> Iterator[Server]:
        """A baseline app from bench/ (bare_app, old_app), served the same way."""
        full_env = {
            "WORKERS": str(workers),
            "JSEARCH_BASE_URL": self.fakes.url,
            "RAPID_API_KEY": JSEARCH_KEY,
            **env,
        }
        with serve(
            name, python_module(module), full_env, log_path=self.work_dir / f"{name}.log"
        ) as server:
            yield server

    def control_fakes(self, **command: Any) -> dict[str, Any]:
        """Script the fake upstreams (see infra/standins/app.py); returns their call counts."""
        response = httpx.post(f"{self.fakes.url}/_control", json=command, timeout=10)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def upstream_calls(self, source: str = "jsearch") -> int:
        return int(self.control_fakes()[source]["calls"])

    def empty_cache(self) -> None:
        """Each run starts from a cold shared cache."""
        admin_url = url_for(database_name(self.database_url))
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute("truncate job_cache")


@contextlib.contextmanager
def bench_environment(work_dir: Path | None = None) -> Iterator[BenchEnvironment]:
    ensure_postgres()
    ensure_redis()
    owned = work_dir is None
    directory = work_dir or Path(tempfile.mkdtemp(prefix="jobsearch-bench-"))
    try:
        with scratch_database("jobsearch_bench") as admin_url:
            migrations.apply(admin_url)
            database_url = service_login_url(admin_url)
            fakes_argv = python_module(
                "infra.standins", "--listings", "generated", "--host", "127.0.0.1", "--port"
            )
            # The stand-ins take their port as an argument, not from PORT.
            port = free_port()
            with serve(
                "fakes",
                [*fakes_argv, str(port)],
                {},
                log_path=directory / "fakes.log",
                health_path="/_control",
                port=port,
            ) as fakes:
                yield BenchEnvironment(directory, fakes, database_url)
    finally:
        if owned:
            shutil.rmtree(directory, ignore_errors=True)
