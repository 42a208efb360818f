"""Pieces the benchmark scripts share: pinning to one CPU, and what machine a figure was taken on.

The scripts run as ``python bench/<name>.py``, so this folder is on ``sys.path`` and they
``import _common``.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any


def venv_python(venv: Path) -> Path:
    """The interpreter of a yardstick's own virtual environment (made under bench/)."""
    return venv / "bin" / "python"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("unknown" when it cannot be read)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _cpu_busy_times() -> dict[int, tuple[int, int]]:
    """{cpu: (busy jiffies, total jiffies)} from /proc/stat."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name != "cpu":
            vals = [int(v) for v in fields]
            idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
            out[int(name[3:])] = (sum(vals) - idle, sum(vals))
    return out


def pin_to_one_cpu(cpu: int | None) -> int:
    """Pin this process (and the processes it starts) to one CPU: ``cpu``, or the least busy allowed one."""
    allowed = sorted(os.sched_getaffinity(0))
    chosen = allowed[-1] if cpu is None else cpu
    if cpu is None and len(allowed) > 1:
        try:
            a = _cpu_busy_times()
            time.sleep(0.5)
            b = _cpu_busy_times()
            load = {c: (b[c][0] - a[c][0]) / max(b[c][1] - a[c][1], 1) for c in allowed if c in a and c in b}
            chosen = min(load, key=load.__getitem__, default=chosen)
        except (OSError, ValueError, IndexError):
            pass
    os.sched_setaffinity(0, {chosen})
    return chosen


def machine_info(cpu: int, dists: tuple[str, ...]) -> dict[str, Any]:
    """The machine, the pinned CPU, the load at the start and the versions of ``dists`` (None: not installed)."""
    versions: dict[str, Any] = {}
    for dist in dists:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "pinned_cpu": cpu,
        "loadavg_at_start": list(os.getloadavg()),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": versions,
    }
