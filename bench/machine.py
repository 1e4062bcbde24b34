"""What the benchmarks ran on, for the results page."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class Machine:
    date: str
    cores: int
    cpu_model: str
    memory_gib: float
    kernel: str
    python: str
    wrk: str
    docker_engine: str

    def describe(self) -> str:
        return (
            f"{self.cores} cores ({self.cpu_model}), {self.memory_gib:.1f} GiB memory, "
            f"Linux {self.kernel}, Python {self.python}, wrk {self.wrk}, "
            f"Docker engine {self.docker_engine}"
        )


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return " ".join(line.split(":", 1)[1].split())
    return platform.processor() or "unknown CPU"


def _memory_gib() -> float:
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    return 0.0


def _tool_version(command: list[str], pick: int) -> str:
    if shutil.which(command[0]) is None:
        return "not installed"
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=30)
    words = (result.stdout or result.stderr).split()
    return words[pick] if len(words) > pick else "unknown"


def _docker_engine() -> str:
    if shutil.which("docker") is None:
        return "not installed"
    result = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return result.stdout.strip() if result.returncode == 0 else "not running"


def describe_machine() -> Machine:
    return Machine(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        cores=os.cpu_count() or 0,
        cpu_model=_cpu_model(),
        memory_gib=_memory_gib(),
        kernel=platform.release(),
        python=platform.python_version(),
        # "wrk debian/4.1.0-3+b2 [epoll] ..."
        wrk=_tool_version(["wrk", "--version"], 1),
        docker_engine=_docker_engine(),
    )
