"""The KPI engine: each interval, one reading of the data-plane maps becomes a
snapshot of per-slice KPIs (deltas, rates, active sessions, SLA status), kept
in a bounded history (sauron.kpi.history)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sauron.abi import layout
from sauron.abi.kpis import (
    DIRECTION_LATENCY,
    SECURITY_KPIS,
    SLICE_LATENCY,
    TRAFFIC_KPIS,
    Aggregate,
)
from sauron.abi.points import entry_point, exit_point
from sauron.bpf.maps import DataPlaneCounters, delta
from sauron.bpf.measurements import TRANSIT_EXPIRY_S
from sauron.catalog import Catalog
from sauron.energy.model import NodeEnergy, SliceEnergy, split_by_volume
from sauron.kpi.history import History
from sauron.kpi.quality import latency_kpis, loss_kpis
from sauron.kpi.records import DirectionKpis, N3Volume, SliceKpis, Snapshot
from sauron.kpi.sessions import SessionActivity, session_activity
from sauron.kpi.sla import SlaTracker
from sauron.kpi.upf_drops import DropLedger

if TYPE_CHECKING:
    from sauron.energy.meter import EnergyMeter

UL, DL = layout.DIR_UPLINK, layout.DIR_DOWNLINK

#: the traffic KPIs that are a count per second
RATES = tuple(k for k in TRAFFIC_KPIS if k.aggregate is Aggregate.RATE)
#: direction name -> id
DIRECTION_IDS = {name: d for d, name in layout.DIRECTION_NAMES.items()}

#: where each direction enters and leaves the UPF (sauron_shared.h's point table)
ENTRY = {d: entry_point(d).id for d in (UL, DL)}
EXIT = {d: exit_point(d).id for d in (UL, DL)}


def _direction(
    now: DataPlaneCounters, before: DataPlaneCounters, slice_id: int, d: int, seconds: float
) -> DirectionKpis:
    n_in, b_in = now.slice(ENTRY[d], slice_id, d), before.slice(ENTRY[d], slice_id, d)
    n_out, b_out = now.slice(EXIT[d], slice_id, d), before.slice(EXIT[d], slice_id, d)
    k = DirectionKpis(
        packets_in=delta(n_in.packets, b_in.packets),
        bytes_in=delta(n_in.bytes, b_in.bytes),
        packets_out=delta(n_out.packets, b_out.packets),
        bytes_out=delta(n_out.bytes, b_out.bytes),
        malformed=delta(n_in.malformed, b_in.malformed),
    )
    for rate in RATES:
        setattr(k, rate.name, getattr(k, str(rate.rate_of)) * rate.scale / seconds)
    for kpi in DIRECTION_LATENCY:
        k.latency[kpi.name] = latency_kpis(now, before, kpi.metric, slice_id, d)
    k.loss = loss_kpis(now, before, slice_id, d)
    return k


def _n3(now: DataPlaneCounters, before: DataPlaneCounters, slice_id: int) -> N3Volume:
    """G-PDUs and their inner octets on N3: received (N3 ingress, uplink)
    and sent (N3 egress, downlink). Only G-PDUs carry an inner packet, so
    the inner octets are theirs alone."""
    n_in = now.slice(layout.POINT_N3_INGRESS, slice_id, UL)
    b_in = before.slice(layout.POINT_N3_INGRESS, slice_id, UL)
    n_out = now.slice(layout.POINT_N3_EGRESS, slice_id, DL)
    b_out = before.slice(layout.POINT_N3_EGRESS, slice_id, DL)
    g_pdu = layout.MSG_G_PDU
    return N3Volume(
        g_pdus_in=delta(n_in.msg[g_pdu], b_in.msg[g_pdu]),
        octets_in=delta(n_in.inner_bytes, b_in.inner_bytes),
        g_pdus_out=delta(n_out.msg[g_pdu], b_out.msg[g_pdu]),
        octets_out=delta(n_out.inner_bytes, b_out.inner_bytes),
    )


def _security(
    now: DataPlaneCounters, before: DataPlaneCounters, slice_id: int
) -> dict[str, int] | None:
    """The slice's frames that failed each check in the interval; None when
    the checks are off and found nothing."""
    counts = [
        delta(now.security_count(slice_id, k), before.security_count(slice_id, k))
        for k in range(layout.SEC_KINDS)
    ]
    if not now.security_on and not any(counts):
        return None
    return {kpi.name: count for kpi, count in zip(SECURITY_KPIS, counts, strict=True)}


@dataclass
class Sessions:
    """Session activity of one interval, by TEID (N3 side) and by UE address."""

    teids: SessionActivity = field(default_factory=SessionActivity)
    ues: SessionActivity = field(default_factory=SessionActivity)


def sessions_between(before: DataPlaneCounters, now: DataPlaneCounters) -> Sessions:
    return Sessions(
        teids=session_activity(before.teids, now.teids, by_teid=True),
        ues=session_activity(before.ues, now.ues, by_teid=False),
    )


def snapshot_from(
    catalog: Catalog,
    now: DataPlaneCounters,
    before: DataPlaneCounters,
    seconds: float,
    at: float,
    sessions: Sessions | None = None,
) -> Snapshot:
    sessions = sessions or sessions_between(before, now)
    teids, ues = sessions.teids.active, sessions.ues.active
    slices: dict[str, SliceKpis] = {}
    for s in (None, *catalog.slices):
        sid = 0 if s is None else s.id
        name = catalog.name_of(sid)
        slices[name] = SliceKpis(
            name=name,
            slice_id=sid,
            snssai="" if s is None else str(s.spec.snssai),
            uplink=_direction(now, before, sid, UL, seconds),
            downlink=_direction(now, before, sid, DL, seconds),
            active_teids=teids.get(sid, 0),
            active_ues=ues.get(sid, 0),
            latency={
                kpi.name: latency_kpis(
                    now, before, kpi.metric, sid, DIRECTION_IDS[kpi.directions[0]]
                )
                for kpi in SLICE_LATENCY
            },
            n3=_n3(now, before, sid),
            security=_security(now, before, sid),
        )
    return Snapshot(time=at, interval_s=seconds, slices=slices)


class KpiEngine:
    """tick() reads the maps (through `read`, a callable returning counters)
    and returns the new snapshot; listeners hear of each one. A packet
    inside the UPF longer than `settle_s` is dropped (sauron.kpi.upf_drops).
    `baseline` (counters and the time they were read) is where the first
    interval starts: an earlier agent's last reading of the same data path,
    so that it covers the time no agent ran; by default, the first reading."""

    def __init__(
        self,
        catalog: Catalog,
        read: Callable[[], DataPlaneCounters],
        clock: Callable[[], float] = time.time,
        history: History | None = None,
        sla: SlaTracker | None = None,
        energy: EnergyMeter | None = None,
        settle_s: float = TRANSIT_EXPIRY_S,
        baseline: tuple[DataPlaneCounters, float] | None = None,
    ) -> None:
        self.catalog = catalog
        self.settle_s = settle_s
        #: (slice id, direction) -> the packets inside the UPF
        self.ledgers: dict[tuple[int, int], DropLedger] = {}
        self.read = read
        self.clock = clock
        # not `history or`: an empty History is falsy, and a configured one is empty at first
        self.history = history if history is not None else History()
        self.sla = sla or SlaTracker(catalog)
        self.energy = energy
        #: slice -> joules by the data-volume split since start (_split_by_volume)
        self._by_volume: dict[str, float] = {}
        #: why there is no energy estimate, when there is none
        self.energy_off = "" if energy is not None else "the energy estimator is not running"
        self.listeners: list[Callable[[Snapshot], None]] = []
        #: ticks completed: everything the engine shows (history, SLA,
        #: sessions, counters) changes with it, so answers built from them
        #: hold until it moves (sauron.service.answers)
        self.generation = 0
        #: the latest interval's session activity (not kept in the history)
        self.sessions = Sessions()
        if baseline is None:
            self._previous, self._previous_t = read(), clock()
        else:
            self._previous, self._previous_t = baseline
        #: where the energy meter's next interval starts: it measured nothing
        #: while no agent ran, so after a baseline its first starts now
        self._energy_from, self._energy_from_t = self._previous, self._previous_t
        if baseline is not None and energy is not None:
            self._energy_from, self._energy_from_t = read(), clock()

    @property
    def counters(self) -> DataPlaneCounters:
        """The latest reading of the maps (monotonic since the programs
        loaded): what /metrics exposes."""
        return self._previous

    def _settle_drops(self, snap: Snapshot, t: float) -> None:
        for kpis in snap.slices.values():
            for d, k in ((UL, kpis.uplink), (DL, kpis.downlink)):
                ledger = self.ledgers.setdefault((kpis.slice_id, d), DropLedger(self.settle_s))
                k.upf_drops = ledger.settle(t, k.packets_in, k.packets_out)
                k.upf_in_flight = ledger.in_flight

    def _measure_energy(self, snap: Snapshot, now: DataPlaneCounters, t: float) -> None:
        """The energy of the interval's slices, over the part of it the meter
        measured (all of it, but for the first interval after a restart)."""
        assert self.energy is not None
        measured = snap
        if self._energy_from is not self._previous:
            seconds = max(t - self._energy_from_t, 1e-6)
            measured = snapshot_from(
                self.catalog,
                now,
                self._energy_from,
                seconds,
                t,
                sessions_between(self._energy_from, now),
            )
        traffic = {name: k.entered() for name, k in measured.slices.items()}
        snap.energy, per_slice = self.energy.measure(self._energy_from, now, traffic)
        self._split_by_volume(snap.energy, per_slice, measured)
        unmeasured = self._energy_from_t - self._previous_t
        if unmeasured > 0:
            snap.energy.unmeasured_seconds = unmeasured
            snap.energy.notes.append(
                f"not measured: the first {unmeasured:.1f} s of this interval, while no "
                "agent ran; the energy figures cover the rest"
            )
        for name, e in per_slice.items():
            snap.slices[name].energy = e

    def _split_by_volume(
        self, node: NodeEnergy, per_slice: dict[str, SliceEnergy], measured: Snapshot
    ) -> None:
        """The second attribution beside the meter's CPU time: the same
        energy by the slices' N3 data volume (split_by_volume), with its
        running total per slice."""
        split_by_volume(node, per_slice, {n: k.n3.octets for n, k in measured.slices.items()})
        for name, e in per_slice.items():
            total = self._by_volume.get(name, 0.0) + e.volume_joules
            self._by_volume[name] = e.cumulative_volume_joules = total

    def tick(self) -> Snapshot:
        now, t = self.read(), self.clock()
        seconds = max(t - self._previous_t, 1e-6)
        self.sessions = sessions_between(self._previous, now)
        snap = snapshot_from(self.catalog, now, self._previous, seconds, t, self.sessions)
        self._settle_drops(snap, t)
        if self.energy is not None:
            self._measure_energy(snap, now, t)
        for check in self.sla.observe(snap.slices, t, seconds):
            snap.slices[check.slice_name].checks.append(check)
        for name, kpis in snap.slices.items():
            kpis.sla = self.sla.status(name)
        self.history.add(snap)
        self._previous, self._previous_t = now, t
        self._energy_from, self._energy_from_t = now, t
        # last of all the state: an answer built at the old generation may
        # already hold some of the new tick (never kept, see answers), but
        # one built at the new generation holds all of it
        self.generation += 1
        for listener in self.listeners:
            listener(snap)
        return snap
