"""What the numbers were measured on: the machine, its load, and CPU accounting from /proc."""

from __future__ import annotations

import asyncio
import os
import platform
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    """Cores, memory, CPU model and the software versions that matter here."""
    return {
        "cores": os.cpu_count() or 0,
        "memory_gib": round(_meminfo_kib("MemTotal") / 1024 / 1024, 1),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": {
            name: _version(name) for name in ("aiokafka", "asyncpg", "fastapi", "uvicorn", "httpx")
        },
    }


def load() -> dict[str, float]:
    """The load averages (1, 5, 15 minutes)."""
    one, five, fifteen = os.getloadavg()
    return {"load1": round(one, 2), "load5": round(five, 2), "load15": round(fifteen, 2)}


async def wait_quiet(
    max_wait_s: float, threshold: float, out: Any = sys.stderr
) -> dict[str, float]:
    """Wait (up to ``max_wait_s``) until the 1-minute load average is below ``threshold``;
    return the load at the end. Other engineers' test runs share this machine."""
    deadline = time.monotonic() + max_wait_s
    announced = False
    while os.getloadavg()[0] >= threshold and time.monotonic() < deadline:
        if not announced:
            print(
                f"bench: load {os.getloadavg()[0]:.2f} >= {threshold}; waiting up to "
                f"{max_wait_s:.0f} s for the machine to be quiet",
                file=out,
            )
            announced = True
        await asyncio.sleep(5)  # polling interval of the load (deadline above)
    now = load()
    if now["load1"] >= threshold:
        print(f"bench: WARNING: measuring with load1 = {now['load1']}", file=out)
    return now


@dataclass(frozen=True, slots=True)
class CpuSample:
    """Process CPU seconds (utime + stime) and system-wide busy/total jiffies at one instant."""

    at: float
    proc_s: dict[int, float]
    busy: int
    total: int


def cpu_sample(pids: list[int]) -> CpuSample:
    busy, total = _system_jiffies()
    return CpuSample(time.monotonic(), {pid: _proc_cpu_s(pid) for pid in pids}, busy, total)


def cpu_between(a: CpuSample, b: CpuSample) -> dict[str, Any]:
    """Per-process cores used (CPU seconds / wall seconds) and the machine's busy share."""
    wall = max(b.at - a.at, 1e-9)
    per_proc = {
        str(pid): round((b.proc_s.get(pid, 0.0) - a.proc_s.get(pid, 0.0)) / wall, 2)
        for pid in a.proc_s
    }
    return {
        "process_cores": per_proc,
        "machine_busy_share": round((b.busy - a.busy) / max(b.total - a.total, 1), 3),
    }


def _proc_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # after the command: state is field 3, utime 14 and stime 15 (1-based, man proc)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _system_jiffies() -> tuple[int, int]:
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0, 0
    values = [int(v) for v in first]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])
    return total - idle, total


def _meminfo_kib(key: str) -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"
