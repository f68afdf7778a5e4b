"""The agent's own process in the names every Prometheus client library
uses (`process_*`, as prometheus_client's process collector writes them),
so the dashboards and alerts operators already have for any exporter's
CPU, memory and descriptors work on the agent unchanged. Read from
/proc/self (the root is a parameter, for tests)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC_SELF = Path("/proc/self")


@dataclass(frozen=True)
class ProcessFigures:
    cpu_seconds: float
    virtual_bytes: int
    resident_bytes: int
    start_time_s: float
    open_fds: int
    max_fds: int


def _boot_time(stat: str) -> float:
    for line in stat.splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise ValueError("/proc/stat has no btime line")


def read(proc_self: Path = PROC_SELF) -> ProcessFigures:
    """This process's figures. Fields of /proc/self/stat (proc(5)) after
    the command name, which may hold spaces: utime, stime (clock ticks),
    starttime (ticks since boot), vsize (bytes), rss (pages)."""
    raw = (proc_self / "stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    ticks = os.sysconf("SC_CLK_TCK")
    utime, stime = int(fields[11]), int(fields[12])
    start_ticks, vsize, rss = int(fields[19]), int(fields[20]), int(fields[21])
    boot = _boot_time((proc_self.parent / "stat").read_text())
    max_fds = 0
    for line in (proc_self / "limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft = line.split()[3]
            max_fds = -1 if soft == "unlimited" else int(soft)
    return ProcessFigures(
        cpu_seconds=(utime + stime) / ticks,
        virtual_bytes=vsize,
        resident_bytes=rss * os.sysconf("SC_PAGE_SIZE"),
        start_time_s=boot + start_ticks / ticks,
        open_fds=len(list((proc_self / "fd").iterdir())),
        max_fds=max_fds,
    )


def lines(figures: ProcessFigures) -> list[str]:
    """The process families in the text format, HELP and TYPE included."""
    out: list[str] = []
    for name, kind, help_text, value in (
        (
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time spent in seconds.",
            figures.cpu_seconds,
        ),
        (
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            figures.virtual_bytes,
        ),
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            figures.resident_bytes,
        ),
        (
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            figures.start_time_s,
        ),
        ("process_open_fds", "gauge", "Number of open file descriptors.", figures.open_fds),
        ("process_max_fds", "gauge", "Maximum number of open file descriptors.", figures.max_fds),
    ):
        text = str(value) if isinstance(value, int) else f"{value:.6f}"
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {text}"]
    return out
