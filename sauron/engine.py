"""The KPI engine: each interval, one reading of the data-plane maps becomes a
snapshot of per-slice KPIs (deltas, rates, active sessions, SLA status), kept
in a bounded history: full resolution for a recent window, then averaged into
coarser steps, so memory stays bounded however long the agent runs."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from sauron.bpf import layout
from sauron.bpf.maps import DataPlaneCounters, delta
from sauron.bpf.measurements import TRANSIT_EXPIRY_S
from sauron.catalog import Catalog
from sauron.energy.model import NodeEnergy, SliceEnergy, merge_node_energy, merge_slice_energy
from sauron.quality import LatencyKpis, LossKpis, add_loss, latency_kpis, loss_kpis, merge_latency
from sauron.sessions import SessionActivity, session_activity
from sauron.sla import Check, SlaTracker
from sauron.upf_drops import DropLedger

if TYPE_CHECKING:
    from sauron.energy.meter import EnergyMeter

UL, DL = layout.DIR_UPLINK, layout.DIR_DOWNLINK

#: the direction each round trip is kept under: that of the stamped segment
#: (RAN side: downlink out on N3; DN side: uplink out on N6)
RTT_DIRECTION = {layout.LAT_RTT_RAN: layout.DIR_DOWNLINK, layout.LAT_RTT_DN: layout.DIR_UPLINK}

#: where each direction enters and leaves the UPF
ENTRY = {UL: layout.POINT_N3_INGRESS, DL: layout.POINT_N6_INGRESS}
EXIT = {UL: layout.POINT_N6_EGRESS, DL: layout.POINT_N3_EGRESS}


@dataclass
class DirectionKpis:
    """One direction of one slice over one interval. `in` is what entered the
    UPF (N3 ingress uplink, N6 ingress downlink), `out` what it delivered."""

    packets_in: int = 0
    bytes_in: int = 0
    packets_out: int = 0
    bytes_out: int = 0
    pps: float = 0.0  # delivered
    mbps: float = 0.0  # delivered
    #: packets that entered and never left, counted once certain (see
    #: sauron.upf_drops): up to the settle time after they entered
    upf_drops: int = 0
    #: packets inside the UPF at the interval's end whose fate is not yet certain
    upf_in_flight: int = 0
    malformed: int = 0
    #: time inside the UPF (N3 in -> N6 out uplink, N6 in -> N3 out downlink)
    transit: LatencyKpis = field(default_factory=LatencyKpis)
    loss: LossKpis = field(default_factory=LossKpis)


@dataclass
class SliceKpis:
    name: str
    slice_id: int
    snssai: str
    uplink: DirectionKpis = field(default_factory=DirectionKpis)
    downlink: DirectionKpis = field(default_factory=DirectionKpis)
    active_teids: int = 0
    active_ues: int = 0
    #: round trip UPF <-> UE (from TCP seen on N3) and UPF <-> server (N6)
    ran_rtt: LatencyKpis = field(default_factory=LatencyKpis)
    dn_rtt: LatencyKpis = field(default_factory=LatencyKpis)
    sla: str = "unmeasured"
    #: the SLA's checks of this interval: each target it measured, its
    #: limit and the value found
    checks: list[Check] = field(default_factory=list)
    #: None when the agent does not estimate energy
    energy: SliceEnergy | None = None

    def entered(self) -> tuple[int, int]:
        """Packets and bytes that entered the UPF, both directions."""
        return (
            self.uplink.packets_in + self.downlink.packets_in,
            self.uplink.bytes_in + self.downlink.bytes_in,
        )


@dataclass
class Snapshot:
    time: float  # unix seconds at the end of the interval
    interval_s: float
    slices: dict[str, SliceKpis]
    energy: NodeEnergy | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    k.pps = k.packets_out / seconds
    k.mbps = k.bytes_out * 8 / seconds / 1e6
    k.transit = latency_kpis(now, before, layout.LAT_TRANSIT, slice_id, d)
    k.loss = loss_kpis(now, before, slice_id, d)
    return k


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
            ran_rtt=latency_kpis(
                now, before, layout.LAT_RTT_RAN, sid, RTT_DIRECTION[layout.LAT_RTT_RAN]
            ),
            dn_rtt=latency_kpis(
                now, before, layout.LAT_RTT_DN, sid, RTT_DIRECTION[layout.LAT_RTT_DN]
            ),
        )
    return Snapshot(time=at, interval_s=seconds, slices=slices)


def _average(snaps: list[Snapshot]) -> Snapshot:
    """Many snapshots as one: counts summed, rates over the whole span."""
    span = sum(s.interval_s for s in snaps)
    merged = Snapshot(time=snaps[-1].time, interval_s=span, slices={})
    for name, first in snaps[0].slices.items():
        out = SliceKpis(
            name=name,
            slice_id=first.slice_id,
            snssai=first.snssai,
            sla=snaps[-1].slices[name].sla,
            checks=snaps[-1].slices[name].checks,
        )
        for d in ("uplink", "downlink"):
            acc = DirectionKpis()
            for snap in snaps:
                part: DirectionKpis = getattr(snap.slices[name], d)
                for f in (
                    "packets_in",
                    "bytes_in",
                    "packets_out",
                    "bytes_out",
                    "upf_drops",
                    "malformed",
                ):
                    setattr(acc, f, getattr(acc, f) + getattr(part, f))
            acc.upf_in_flight = getattr(snaps[-1].slices[name], d).upf_in_flight
            acc.pps = acc.packets_out / span
            acc.mbps = acc.bytes_out * 8 / span / 1e6
            acc.transit = merge_latency([getattr(snap.slices[name], d).transit for snap in snaps])
            for snap in snaps:
                add_loss(acc.loss, getattr(snap.slices[name], d).loss)
            setattr(out, d, acc)
        out.ran_rtt = merge_latency([s.slices[name].ran_rtt for s in snaps])
        out.dn_rtt = merge_latency([s.slices[name].dn_rtt for s in snaps])
        out.active_teids = max(s.slices[name].active_teids for s in snaps)
        out.active_ues = max(s.slices[name].active_ues for s in snaps)
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


class KpiEngine:
    """tick() reads the maps (through `read`, a callable returning counters)
    and returns the new snapshot; listeners hear of each one. A packet
    inside the UPF longer than `settle_s` is dropped (sauron.upf_drops)."""

    def __init__(
        self,
        catalog: Catalog,
        read: Callable[[], DataPlaneCounters],
        clock: Callable[[], float] = time.time,
        history: History | None = None,
        sla: SlaTracker | None = None,
        energy: EnergyMeter | None = None,
        settle_s: float = TRANSIT_EXPIRY_S,
    ) -> None:
        self.catalog = catalog
        self.settle_s = settle_s
        #: (slice id, direction) -> the packets inside the UPF
        self.ledgers: dict[tuple[int, int], DropLedger] = {}
        self.read = read
        self.clock = clock
        self.history = history or History()
        self.sla = sla or SlaTracker(catalog)
        self.energy = energy
        #: why there is no energy estimate, when there is none
        self.energy_off = "" if energy is not None else "the energy estimator is not running"
        self.listeners: list[Callable[[Snapshot], None]] = []
        #: the latest interval's session activity (not kept in the history)
        self.sessions = Sessions()
        self._previous = read()
        self._previous_t = clock()

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

    def tick(self) -> Snapshot:
        now, t = self.read(), self.clock()
        seconds = max(t - self._previous_t, 1e-6)
        self.sessions = sessions_between(self._previous, now)
        snap = snapshot_from(self.catalog, now, self._previous, seconds, t, self.sessions)
        self._settle_drops(snap, t)
        if self.energy is not None:
            traffic = {name: k.entered() for name, k in snap.slices.items()}
            snap.energy, per_slice = self.energy.measure(self._previous, now, traffic)
            for name, e in per_slice.items():
                snap.slices[name].energy = e
        for check in self.sla.observe(snap.slices, t):
            snap.slices[check.slice_name].checks.append(check)
        for name, kpis in snap.slices.items():
            kpis.sla = self.sla.status(name)
        self.history.add(snap)
        self._previous, self._previous_t = now, t
        for listener in self.listeners:
            listener(snap)
        return snap
