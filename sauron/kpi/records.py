"""The KPI records: what one interval measured, per slice and direction.
The engine fills them; the SLA, the history, the service and the exporters
read them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sauron.abi.kpis import DIRECTION_LATENCY, SLICE_LATENCY
from sauron.energy.model import NodeEnergy, SliceEnergy
from sauron.kpi.quality import LatencyKpis, LossKpis
from sauron.security.detect import SecurityEvent


def _latencies(names: tuple[str, ...]) -> dict[str, LatencyKpis]:
    return {name: LatencyKpis() for name in names}


@dataclass(frozen=True)
class Check:
    """One target against one measured value in one interval."""

    slice_name: str
    target: str  # e.g. "transit_latency_ms.p99.uplink"
    limit: float
    value: float
    ok: bool
    #: True when the target is a floor (minimum throughput): worst = lowest
    floor: bool = False


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
    #: sauron.kpi.upf_drops): up to the settle time after they entered
    upf_drops: int = 0
    #: packets inside the UPF at the interval's end whose fate is not yet certain
    upf_in_flight: int = 0
    malformed: int = 0
    #: the latency KPIs reported per direction (sauron.abi.kpis), by name
    latency: dict[str, LatencyKpis] = field(
        default_factory=lambda: _latencies(tuple(k.name for k in DIRECTION_LATENCY))
    )
    loss: LossKpis = field(default_factory=LossKpis)

    @property
    def transit(self) -> LatencyKpis:
        """Time inside the UPF (N3 in -> N6 out uplink, N6 in -> N3 out
        downlink): the latency most code asks for by name."""
        return self.latency["transit"]

    @transit.setter
    def transit(self, value: LatencyKpis) -> None:
        self.latency["transit"] = value


@dataclass
class N3Volume:
    """A slice's user data on N3 over one interval, as TS 28.552 counts it
    per S-NSSAI (clause 5.4.1): G-PDUs (GTP-U data PDUs, no echo, end marker
    or error indication) received on N3 (uplink, N3 ingress) and sent on it
    (downlink, N3 egress), and the octets of the inner IP packets they carry
    (the T-PDUs: no Ethernet, outer IP, UDP or GTP-U header), as Open5GS's
    UPF counts its N3 volumes."""

    g_pdus_in: int = 0
    octets_in: int = 0
    g_pdus_out: int = 0
    octets_out: int = 0

    def add(self, other: N3Volume) -> None:
        self.g_pdus_in += other.g_pdus_in
        self.octets_in += other.octets_in
        self.g_pdus_out += other.g_pdus_out
        self.octets_out += other.octets_out

    @property
    def octets(self) -> int:
        """Uplink and downlink: the data volume TS 28.554's energy efficiency divides."""
        return self.octets_in + self.octets_out


@dataclass
class SliceKpis:
    name: str
    slice_id: int
    snssai: str
    uplink: DirectionKpis = field(default_factory=DirectionKpis)
    downlink: DirectionKpis = field(default_factory=DirectionKpis)
    active_teids: int = 0
    active_ues: int = 0
    #: the latency KPIs reported once per slice (sauron.abi.kpis), by name:
    #: the round trips UPF <-> UE (from TCP seen on N3) and UPF <-> server (N6)
    latency: dict[str, LatencyKpis] = field(
        default_factory=lambda: _latencies(tuple(k.name for k in SLICE_LATENCY))
    )
    sla: str = "unmeasured"
    #: the SLA's checks of this interval: each target it measured, its
    #: limit and the value found
    checks: list[Check] = field(default_factory=list)
    #: None when the agent does not estimate energy
    energy: SliceEnergy | None = None
    #: the G-PDUs and their octets on N3 (the 3GPP view, /api/v1/pm)
    n3: N3Volume = field(default_factory=N3Volume)
    #: uplink G-PDUs that failed each security check (sauron.abi.kpis
    #: SECURITY_KPIS, every kind, by name); None: the checks are off
    security: dict[str, int] | None = None

    @property
    def ran_rtt(self) -> LatencyKpis:
        return self.latency["ran_rtt"]

    @ran_rtt.setter
    def ran_rtt(self, value: LatencyKpis) -> None:
        self.latency["ran_rtt"] = value

    @property
    def dn_rtt(self) -> LatencyKpis:
        return self.latency["dn_rtt"]

    @dn_rtt.setter
    def dn_rtt(self, value: LatencyKpis) -> None:
        self.latency["dn_rtt"] = value

    def latency_of(self, name: str, direction: str) -> LatencyKpis:
        """A latency KPI by name: under `direction` when it is reported per
        direction, else the slice's (kept under its one direction)."""
        if name in self.latency:
            return self.latency[name]
        direction_kpis: DirectionKpis = getattr(self, direction)
        return direction_kpis.latency[name]

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
    #: the security detections that opened, grew or ended in the interval
    #: (sauron.security.detect), as they stand at its end
    security_events: list[SecurityEvent] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
