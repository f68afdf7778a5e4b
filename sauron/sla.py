"""SLA evaluation: per slice and interval, the catalog's targets against the
measured values, and violations that open after `open_bad` bad intervals of
the last `window` and close after `close_good` good ones in a row, so one
noisy interval neither opens nor closes one.

Measured today: throughput per direction (min/max Mbit/s). Latency, loss and
energy targets are evaluated as their measurements land."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from sauron.catalog import Catalog, SlaTargets


@dataclass(frozen=True)
class Check:
    """One target against one measured value in one interval."""

    slice_name: str
    target: str  # e.g. "min_throughput_mbps.downlink"
    limit: float
    value: float
    ok: bool


def evaluate(
    slice_name: str, targets: SlaTargets, throughput_mbps: dict[str, float]
) -> list[Check]:
    checks: list[Check] = []
    for kind, lower_is_bad in (("min_throughput_mbps", True), ("max_throughput_mbps", False)):
        rates = getattr(targets, kind)
        if rates is None:
            continue
        for direction in ("uplink", "downlink"):
            limit = getattr(rates, direction)
            if limit is None or direction not in throughput_mbps:
                continue
            value = throughput_mbps[direction]
            ok = value >= limit if lower_is_bad else value <= limit
            checks.append(Check(slice_name, f"{kind}.{direction}", limit, value, ok))
    return checks


@dataclass
class Violation:
    slice_name: str
    target: str
    limit: float
    started_interval: int
    worst: float
    ended_interval: int | None = None
    intervals: int = 0

    @property
    def open(self) -> bool:
        return self.ended_interval is None


@dataclass
class _TargetState:
    recent: deque[bool]
    good_run: int = 0
    violation: Violation | None = None


@dataclass
class SlaTracker:
    catalog: Catalog
    window: int = 5
    open_bad: int = 3
    close_good: int = 3
    interval: int = 0
    events: list[Violation] = field(default_factory=list)
    _state: dict[tuple[str, str], _TargetState] = field(default_factory=dict)

    def observe(self, throughput: dict[str, dict[str, float]]) -> list[Check]:
        """One interval's measurements, per slice name; returns its checks."""
        self.interval += 1
        all_checks: list[Check] = []
        for s in self.catalog.slices:
            for check in evaluate(s.name, s.spec.sla, throughput.get(s.name, {})):
                all_checks.append(check)
                self._track(check)
        return all_checks

    def _track(self, check: Check) -> None:
        key = (check.slice_name, check.target)
        state = self._state.setdefault(key, _TargetState(recent=deque(maxlen=self.window)))
        state.recent.append(check.ok)
        state.good_run = state.good_run + 1 if check.ok else 0
        v = state.violation
        if v is None:
            if sum(1 for ok in state.recent if not ok) >= self.open_bad:
                v = Violation(
                    check.slice_name, check.target, check.limit, self.interval, check.value
                )
                state.violation = v
                self.events.append(v)
        elif state.good_run >= self.close_good:
            v.ended_interval = self.interval
            state.violation = None
            return
        if state.violation is not None:
            v = state.violation
            v.intervals += 1
            bad_is_low = check.target.startswith("min_")
            v.worst = min(v.worst, check.value) if bad_is_low else max(v.worst, check.value)

    def status(self, slice_name: str) -> str:
        """violated / at risk (a bad interval lately) / met / unmeasured (no
        target of the slice can be evaluated yet)."""
        states = [st for (name, _), st in self._state.items() if name == slice_name]
        if not states:
            return "unmeasured"
        if any(st.violation for st in states):
            return "violated"
        if any(not all(st.recent) for st in states):
            return "at risk"
        return "met"
