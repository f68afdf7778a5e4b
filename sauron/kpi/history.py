"""The engine's memory: recent snapshots at full resolution, older ones
averaged into coarser steps, so memory stays bounded however long the agent
runs."""

from __future__ import annotations

import threading
from collections import deque

from sauron.abi.kpis import (
    DIRECTION_LATENCY,
    DIRECTIONS,
    SECURITY_KPIS,
    SLICE_LATENCY,
    TRAFFIC_KPIS,
    Aggregate,
    TrafficKpi,
)
from sauron.energy.model import merge_node_energy, merge_slice_energy
from sauron.kpi.quality import add_loss, merge_latency
from sauron.kpi.records import DirectionKpis, SliceKpis, Snapshot


def _aggregate(
    kpi: TrafficKpi, parts: list[DirectionKpis], acc: DirectionKpis, span: float
) -> float:
    """One traffic KPI over many intervals; a rate's count is already in `acc`
    (the table lists counts before their rates)."""
    value: float
    if kpi.aggregate is Aggregate.SUM:
        value = sum(getattr(p, kpi.name) for p in parts)
    elif kpi.aggregate is Aggregate.LAST:
        value = getattr(parts[-1], kpi.name)
    else:
        assert kpi.rate_of is not None, f"the rate {kpi.name} names its count"
        value = getattr(acc, kpi.rate_of) * kpi.scale / span
    return value


def add_security(parts: list[dict[str, int] | None]) -> dict[str, int] | None:
    """Security counts of many intervals: each kind's summed; None when the
    checks were off in every one."""
    counted = [p for p in parts if p is not None]
    if not counted:
        return None
    return {kpi.name: sum(p.get(kpi.name, 0) for p in counted) for kpi in SECURITY_KPIS}


def _average(snaps: list[Snapshot]) -> Snapshot:
    """Many snapshots as one: counts summed, rates over the whole span."""
    span = sum(s.interval_s for s in snaps)
    merged = Snapshot(
        time=snaps[-1].time,
        interval_s=span,
        slices={},
        # an event that grew over several intervals, as it stood last
        security_events=list({e.id: e for s in snaps for e in s.security_events}.values()),
    )
    for name, first in snaps[0].slices.items():
        out = SliceKpis(
            name=name,
            slice_id=first.slice_id,
            snssai=first.snssai,
            sla=snaps[-1].slices[name].sla,
            checks=snaps[-1].slices[name].checks,
        )
        for d in DIRECTIONS:
            parts: list[DirectionKpis] = [getattr(snap.slices[name], d) for snap in snaps]
            acc = DirectionKpis()
            for kpi in TRAFFIC_KPIS:
                setattr(acc, kpi.name, _aggregate(kpi, parts, acc, span))
            for latency in DIRECTION_LATENCY:
                acc.latency[latency.name] = merge_latency([p.latency[latency.name] for p in parts])
            for part in parts:
                add_loss(acc.loss, part.loss)
            setattr(out, d, acc)
        for latency in SLICE_LATENCY:
            out.latency[latency.name] = merge_latency(
                [s.slices[name].latency[latency.name] for s in snaps]
            )
        out.active_teids = max(s.slices[name].active_teids for s in snaps)
        out.active_ues = max(s.slices[name].active_ues for s in snaps)
        for snap in snaps:
            out.n3.add(snap.slices[name].n3)
        out.security = add_security([s.slices[name].security for s in snaps])
        energies = [e for s in snaps if (e := s.slices[name].energy) is not None]
        if energies:
            out.energy = merge_slice_energy(energies, span)
        merged.slices[name] = out
    nodes = [s.energy for s in snaps if s.energy is not None]
    if nodes:
        merged.energy = merge_node_energy(nodes, span)
    return merged


class History:
    """Recent snapshots at full resolution; older ones averaged `fold` at a
    time; both bounded. The engine adds from its thread while the service
    reads from the event loop: a lock keeps readers off a deque in motion."""

    def __init__(self, recent: int = 300, fold: int = 10, folded: int = 360) -> None:
        self._lock = threading.Lock()
        self.recent: deque[Snapshot] = deque()
        self.recent_max = recent
        self.fold = fold
        self.folded: deque[Snapshot] = deque(maxlen=folded)
        self._pending: list[Snapshot] = []

    def add(self, snap: Snapshot) -> None:
        with self._lock:
            self.recent.append(snap)
            while len(self.recent) > self.recent_max:
                self._pending.append(self.recent.popleft())
                if len(self._pending) == self.fold:
                    self.folded.append(_average(self._pending))
                    self._pending = []

    def between(self, since: float | None = None, until: float | None = None) -> list[Snapshot]:
        with self._lock:
            snaps = [*self.folded, *self._pending, *self.recent]
        return [
            s
            for s in snaps
            if (since is None or s.time >= since) and (until is None or s.time <= until)
        ]

    def latest(self) -> Snapshot | None:
        with self._lock:
            return self.recent[-1] if self.recent else None

    def __len__(self) -> int:
        with self._lock:
            return len(self.recent) + len(self._pending) + len(self.folded)
