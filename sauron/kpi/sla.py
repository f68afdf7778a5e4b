"""SLA evaluation: per slice and interval, the catalog's targets against the
measured KPIs, and violations that open after `open_bad` bad intervals of the
last `window` and close after `close_good` good ones in a row, so one noisy
interval neither opens nor closes one.

A target is only checked in an interval that measured it: a latency
percentile needs samples, a loss ratio packets whose fate is known. An
interval without them neither counts as bad nor as good. A target left
unmeasured for `window` intervals in a row is forgotten: its open violation
closes as "not measured" (nothing shows it still holds, nor that it ended),
and its old outcomes are dropped, so old failures cannot open or reopen one
later without new ones."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from sauron.abi.histogram import QUANTILES
from sauron.abi.kpis import (
    DIRECTION_LATENCY,
    DIRECTIONS,
    SECURITY_KPIS,
    SECURITY_SLA_KEY,
    SLICE_LATENCY,
)
from sauron.catalog import Catalog, LatencyTarget, SlaTargets
from sauron.kpi.records import Check, DirectionKpis, SliceKpis

if TYPE_CHECKING:
    from sauron.kpi.quality import LatencyKpis

#: loss sources a `max_loss_ratio` target applies to, with the ratio's field
LOSS_SOURCES = (("transit", "transit_ratio"), ("sequence", "sequence_ratio"))


def _latency_checks(
    slice_name: str, target_name: str, target: LatencyTarget | None, kpis: LatencyKpis
) -> list[Check]:
    if target is None or kpis.samples == 0:
        return []
    checks = []
    for quantile, _ in QUANTILES:
        limit = getattr(target, quantile)
        value = getattr(kpis, f"{quantile}_ms")
        if limit is None or value is None:
            continue
        checks.append(Check(slice_name, f"{target_name}.{quantile}", limit, value, value <= limit))
    return checks


def _direction_checks(
    slice_name: str, targets: SlaTargets, direction: str, k: DirectionKpis
) -> list[Check]:
    checks = [
        Check(c.slice_name, f"{c.target}.{direction}", c.limit, c.value, c.ok)
        for kpi in DIRECTION_LATENCY
        for c in _latency_checks(
            slice_name, kpi.sla_key, getattr(targets, kpi.sla_key), k.latency[kpi.name]
        )
    ]
    if targets.max_loss_ratio is not None:
        for source, attr in LOSS_SOURCES:
            value = getattr(k.loss, attr)
            if value is not None:
                limit = targets.max_loss_ratio
                checks.append(
                    Check(
                        slice_name,
                        f"max_loss_ratio.{source}.{direction}",
                        limit,
                        value,
                        value <= limit,
                    )
                )
    for kind, floor in (("min_throughput_mbps", True), ("max_throughput_mbps", False)):
        rates = getattr(targets, kind)
        rate_limit: float | None = None if rates is None else getattr(rates, direction)
        if rate_limit is None:
            continue
        limit = rate_limit
        ok = k.mbps >= limit if floor else k.mbps <= limit
        checks.append(Check(slice_name, f"{kind}.{direction}", limit, k.mbps, ok, floor))
    return checks


def _security_checks(targets: SlaTargets, kpis: SliceKpis, seconds: float) -> list[Check]:
    """Each check's frames per second against its limit, while the checks run."""
    limits = targets.max_security_events_per_s
    if limits is None or kpis.security is None:
        return []
    checks = []
    for kpi in SECURITY_KPIS:
        limit = getattr(limits, kpi.name)
        if limit is None:
            continue
        value = kpis.security.get(kpi.name, 0) / seconds
        checks.append(
            Check(kpis.name, f"{SECURITY_SLA_KEY}.{kpi.name}", limit, value, value <= limit)
        )
    return checks


def evaluate(targets: SlaTargets, kpis: SliceKpis, seconds: float = 1.0) -> list[Check]:
    """Every target of a slice that this interval (of `seconds`) measured."""
    checks: list[Check] = []
    for direction in DIRECTIONS:
        checks += _direction_checks(kpis.name, targets, direction, getattr(kpis, direction))
    for kpi in SLICE_LATENCY:
        target = getattr(targets, kpi.sla_key)
        checks += _latency_checks(kpis.name, kpi.sla_key, target, kpis.latency[kpi.name])
    energy = kpis.energy
    limit = targets.max_energy_j_per_gb
    # checked only when energy was estimated and the slice carried traffic
    if limit is not None and energy is not None and energy.joules_per_gb is not None:
        value = energy.joules_per_gb
        checks.append(Check(kpis.name, "max_energy_j_per_gb", limit, value, value <= limit))
    return checks + _security_checks(targets, kpis, seconds)


#: why a violation closed: `close_good` passed checks in a row, or no check
#: of its target for a whole window
EndReason = Literal["recovered", "not measured"]
RECOVERED: EndReason = "recovered"
NOT_MEASURED: EndReason = "not measured"


@dataclass
class Violation:
    slice_name: str
    target: str
    limit: float
    #: the first failed interval of those that opened it
    started_interval: int
    started_at: float  # unix seconds, end of that interval
    worst: float
    ended_interval: int | None = None
    ended_at: float | None = None
    #: intervals it stayed open, checked or not
    intervals: int = 0
    #: of those, the ones whose check failed
    bad_intervals: int = 0
    #: None while open
    end_reason: EndReason | None = None
    #: the latest diagnosis of its target while it was open, in one sentence
    #: (sauron.agent.diagnosing); None: none was made
    diagnosis: str | None = None
    #: the pcapng of its slice's frame heads while it was open
    #: (sauron.diagnosis.evidence); None: none was written
    evidence: str | None = None

    @property
    def open(self) -> bool:
        return self.ended_interval is None


@dataclass(frozen=True)
class _Outcome:
    ok: bool
    value: float
    interval: int
    at: float


@dataclass
class _TargetState:
    recent: deque[_Outcome]
    good_run: int = 0
    #: intervals in a row that did not check the target
    unmeasured_run: int = 0
    violation: Violation | None = None


@dataclass
class SlaTracker:
    """Flapping rule: open after `open_bad` failed checks among the last
    `window`, close after `close_good` passed checks in a row ("recovered"),
    or after `window` intervals in a row without a check ("not measured").
    Events are kept up to `max_events` (oldest closed ones dropped first)."""

    catalog: Catalog
    window: int = 5
    open_bad: int = 3
    close_good: int = 3
    max_events: int = 1000
    interval: int = 0
    events: list[Violation] = field(default_factory=list)
    #: what the latest observe() opened and closed, in order: ("opened" or
    #: "closed", the violation); the publisher writes these as events
    changes: list[tuple[str, Violation]] = field(default_factory=list)
    _state: dict[tuple[str, str], _TargetState] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 1 <= self.open_bad <= self.window or self.close_good < 1:
            raise ValueError("need 1 <= open_bad <= window and close_good >= 1")

    def observe(self, slices: dict[str, SliceKpis], at: float, seconds: float = 1.0) -> list[Check]:
        """One interval's KPIs (over `seconds`), per slice name; returns its checks."""
        self.interval += 1
        self.changes = []
        all_checks: list[Check] = []
        for s in self.catalog.slices:
            kpis = slices.get(s.name)
            if kpis is None:
                continue
            for check in evaluate(s.spec.sla, kpis, seconds):
                all_checks.append(check)
                self._track(check, at)
        measured = {(c.slice_name, c.target) for c in all_checks}
        self._forget_unmeasured(measured, at)
        for state in self._state.values():
            if state.violation is not None:
                state.violation.intervals += 1
        self._trim()
        return all_checks

    def _track(self, check: Check, at: float) -> None:
        key = (check.slice_name, check.target)
        state = self._state.setdefault(key, _TargetState(recent=deque(maxlen=self.window)))
        state.recent.append(_Outcome(check.ok, check.value, self.interval, at))
        state.good_run = state.good_run + 1 if check.ok else 0
        state.unmeasured_run = 0
        v = state.violation
        if v is None:
            bad = [o for o in state.recent if not o.ok]
            if len(bad) < self.open_bad:
                return
            # it started with the first failure of those that opened it
            v = Violation(
                check.slice_name,
                check.target,
                check.limit,
                started_interval=bad[0].interval,
                started_at=bad[0].at,
                worst=check.value,
                intervals=self.interval - bad[0].interval,
                bad_intervals=len(bad) - 1,
            )
            for o in bad:
                v.worst = self._worse(check, v.worst, o.value)
            state.violation = v
            self.events.append(v)
            self.changes.append(("opened", v))
        elif state.good_run >= self.close_good:
            self._close(v, RECOVERED, at)
            state.violation = None
            return
        if not check.ok:
            v.bad_intervals += 1
        v.worst = self._worse(check, v.worst, check.value)

    def _forget_unmeasured(self, measured: set[tuple[str, str]], at: float) -> None:
        """Targets this interval did not check: after `window` such intervals
        in a row, an open violation closes as not measured and the target's
        state goes, so a later check starts from scratch."""
        for key, state in list(self._state.items()):
            if key in measured:
                continue
            state.unmeasured_run += 1
            if state.unmeasured_run < self.window:
                continue
            if state.violation is not None:
                self._close(state.violation, NOT_MEASURED, at)
            del self._state[key]

    def _close(self, v: Violation, reason: EndReason, at: float) -> None:
        v.ended_interval, v.ended_at, v.end_reason = self.interval, at, reason
        self.changes.append(("closed", v))

    @staticmethod
    def _worse(check: Check, a: float, b: float) -> float:
        return min(a, b) if check.floor else max(a, b)

    def _trim(self) -> None:
        excess = len(self.events) - self.max_events
        if excess <= 0:
            return
        closed = [v for v in self.events if not v.open][:excess]
        drop = {id(v) for v in closed}
        self.events = [v for v in self.events if id(v) not in drop]

    def status(self, slice_name: str) -> str:
        """violated / at risk (a failed check lately) / met / unmeasured (no
        target of the slice checked within the last `window` intervals)."""
        states = [st for (name, _), st in self._state.items() if name == slice_name]
        if not states:
            return "unmeasured"
        if any(st.violation for st in states):
            return "violated"
        if any(not o.ok for st in states for o in st.recent):
            return "at risk"
        return "met"

    def target_states(self, slice_name: str) -> dict[str, str]:
        """Each target of the slice checked within the last `window`
        intervals: violated (a violation open), at risk (a failed check
        lately) or met."""
        states = {}
        for (name, target), st in self._state.items():
            if name != slice_name:
                continue
            if st.violation is not None:
                states[target] = "violated"
            elif any(not o.ok for o in st.recent):
                states[target] = "at risk"
            else:
                states[target] = "met"
        return states

    def open_violations(self, slice_name: str) -> list[Violation]:
        return [v for v in self.events if v.open and v.slice_name == slice_name]
