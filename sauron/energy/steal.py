"""Steal time: how long each virtual CPU wanted to run while the hypervisor
ran something else. The energy probe times stretches with the monotonic
clock, which keeps running while the CPU is stolen, so stolen time would be
counted as work done here; the meter takes it out (the scheduler does the
same for its own accounting)."""

from __future__ import annotations

import os
from pathlib import Path

#: /proc/stat's unit: USER_HZ ticks
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
STEAL_COLUMN = 8  # "cpuN user nice system idle iowait irq softirq steal ..."


class StealClock:
    """Per-CPU steal time from /proc/stat, in nanoseconds (at the file's
    resolution, one USER_HZ tick: 10 ms)."""

    def __init__(self, cpus: int, proc_stat: Path = Path("/proc/stat")) -> None:
        self.cpus = cpus
        self.path = proc_stat
        #: why the last reading found no steal time, or ""
        self.absent = ""

    def read(self) -> list[int] | None:
        """Steal time so far per CPU (0 for a CPU the file does not list),
        or None when the file cannot be read."""
        try:
            text = self.path.read_text()
        except OSError as exc:
            self.absent = f"{self.path}: {exc.strerror}"
            return None
        steal = [0] * self.cpus
        seen = False
        for row in text.splitlines():
            cells = row.split()
            if not cells or not cells[0].startswith("cpu") or cells[0] == "cpu":
                continue
            if len(cells) <= STEAL_COLUMN:
                break
            cpu = int(cells[0][3:])
            if cpu < self.cpus:
                steal[cpu] = int(cells[STEAL_COLUMN]) * 1_000_000_000 // TICKS_PER_SECOND
                seen = True
        self.absent = "" if seen else f"{self.path}: no per-CPU steal column"
        return steal if seen else None


def without_steal(
    timed_ns: list[int], stolen_ns: list[int]
) -> tuple[list[int], list[int], list[float]]:
    """Per CPU: busy time as the probe timed it and the steal of the same
    interval -> (busy time that was this node's, the steal that fell in it,
    the fraction of each timed figure to keep). Steal happens while a CPU
    wants to run, so it is taken out of busy time; which task was waiting is
    not known, so every figure timed on that CPU loses the same share."""
    busy, stolen, kept = [], [], []
    for timed, steal in zip(timed_ns, stolen_ns, strict=True):
        steal = min(max(0, steal), timed)
        busy.append(timed - steal)
        stolen.append(steal)
        kept.append((timed - steal) / timed if timed else 1.0)
    return busy, stolen, kept


def kept_share(per_cpu_ns: list[int], kept: list[float]) -> list[int]:
    return [round(ns * k) for ns, k in zip(per_cpu_ns, kept, strict=True)]
