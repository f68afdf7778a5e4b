"""One benchmark figure, the machine it came from, and the table `make bench`
prints: every section returns Figures, and results.json holds them all."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal


@dataclass
class Figure:
    """`value` is a median of several runs; `spread` half their
    interquartile range (0 for a single run or an exact count)."""

    name: str
    value: float
    unit: str
    spread: float = 0.0
    #: the issue's goal; `goal_is` says which side of it passes
    goal: float | None = None
    goal_is: Literal["at_most", "at_least"] | None = None
    #: a sentence for the table: what was measured, under which conditions
    what: str = ""
    runs: int = 1
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def met(self) -> bool | None:
        if self.goal is None:
            return None
        return self.value <= self.goal if self.goal_is == "at_most" else self.value >= self.goal

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["met"] = self.met
        out["machine"] = machine()
        return out


def median_spread(values: Sequence[float]) -> tuple[float, float]:
    """Median and half the interquartile range."""
    if len(values) < 2:
        return (float(values[0]), 0.0) if values else (float("nan"), 0.0)
    q = statistics.quantiles(values, n=4, method="inclusive")
    return statistics.median(values), (q[2] - q[0]) / 2


def figure(name: str, values: Sequence[float], unit: str, **extra: Any) -> Figure:
    value, spread = median_spread(values)
    return Figure(name, value, unit, spread, runs=len(values), **extra)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return 0.0


def _virtualised() -> str:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    return "virtual machine" if " hypervisor" in flags else "bare metal"


@cache
def machine() -> str:
    return (
        f"{_cpu_model()}, {os.cpu_count()} CPUs, {_memory_gb():.1f} GB, {_virtualised()}, "
        f"Linux {platform.release()}, Python {platform.python_version()}"
    )


def _number(value: float) -> str:
    if value != value:  # NaN
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}".replace(",", " ")
    if abs(value) >= 10:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _goal(f: Figure) -> str:
    if f.goal is None:
        return ""
    sign = "<=" if f.goal_is == "at_most" else ">="
    return f"{sign} {_number(f.goal)} {'met' if f.met else 'MISSED'}"


def table(figures: Sequence[Figure]) -> str:
    rows = [("name", "value", "spread", "unit", "goal")]
    rows += [(f.name, _number(f.value), _number(f.spread), f.unit, _goal(f)) for f in figures]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = []
    for k, r in enumerate(rows):
        lines.append(
            f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  ±{r[2]:<{widths[2]}}  "
            f"{r[3]:<{widths[3]}}  {r[4]}".rstrip()
            if k
            else f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}   {r[2]:<{widths[2]}}  "
            f"{r[3]:<{widths[3]}}  {r[4]}"
        )
    return "\n".join(lines)


def markdown(figures: Sequence[Figure]) -> str:
    """The table as docs/performance.md shows it."""
    lines = ["| figure | value | spread | unit | goal | what |", "|---|---|---|---|---|---|"]
    for f in figures:
        goal = ""
        if f.goal is not None:
            sign = "≤" if f.goal_is == "at_most" else "≥"
            goal = f"{sign} {_number(f.goal)} {'met' if f.met else '**missed**'}"
        lines.append(
            f"| `{f.name}` | {_number(f.value)} | {_number(f.spread)} | {f.unit} | {goal} "
            f"| {f.what} |"
        )
    return "\n".join(lines)
