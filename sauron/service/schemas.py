"""Schemas of the API's JSON documents (documents.py builds them), as
pydantic models: the OpenAPI document's components come from here, and the
API tests check every response against them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from sauron.abi.kpis import (
    DIRECTION_LATENCY,
    DIRECTIONS,
    LATENCY_KPIS,
    LOSS_BURST,
    SECURITY_KPIS,
    SLICE_LATENCY,
    TRAFFIC_KPIS,
    LatencyKpi,
    TrafficKpi,
)
from sauron.security.detect import SPOOFING_UE, TEID_SCAN

SlaStatus = Literal["met", "at risk", "violated", "unmeasured"]
#: the choices of the API's parameters (the routes check them, the client
#: types them)
DirectionName = Literal["uplink", "downlink"]
SessionsBy = Literal["teid", "ue"]
SessionState = Literal["active", "ended", "all"]
SessionSource = Literal["pfcp", "smf", "any"]
#: the histograms the histogram route serves: every latency KPI, the loss bursts
HISTOGRAMS = (*(k.name for k in LATENCY_KPIS), LOSS_BURST)
#: why a violation closed (sauron.kpi.sla's rule)
EndReason = Literal["recovered", "not measured"]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Latency(_Doc):
    """Percentiles in ms over the interval; error_ms says how far the true
    percentile can lie from each."""

    samples: int
    mean_ms: float | None
    max_ms: float | None
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    error_ms: dict[str, float]
    #: raw bucket counts by bucket index, only when asked for (buckets=true)
    buckets: dict[str, int] | None = None


class Loss(_Doc):
    transit_lost: int
    transit_resolved: int
    transit_ratio: float | None
    sequence_lost: int
    sequence_received: int
    sequence_ratio: float | None
    sequence_reordered: int
    sequence_duplicates: int
    tcp_retransmissions: int
    tcp_segments: int
    tcp_retransmission_ratio: float | None


def _traffic_field(kpi: TrafficKpi) -> Any:
    kind = int if kpi.integer else float
    return (kind, Field(description=f"{kpi.help} ({kpi.unit})"))


def _latency_field(kpi: LatencyKpi) -> Any:
    return (Latency, Field(description=f"{kpi.help} ({kpi.unit})"))


#: the schemas below that list KPIs are made from sauron.abi.kpis, so a KPI
#: added there is in the API, its OpenAPI document and its checks at once;
#: a type checker sees them as Any
#: a count and a rate per security check, a field per kind of the table
#: (sauron.abi.kpis SECURITY_KPIS)
if TYPE_CHECKING:
    SecurityFrames = Any
    SecurityRates = Any
else:
    SecurityFrames = create_model(
        "SecurityFrames",
        __base__=_Doc,
        __doc__="Uplink G-PDUs that failed each check over the window.",
        **{k.name: (int, Field(description=f"{k.title}: {k.help}")) for k in SECURITY_KPIS},
    )
    SecurityRates = create_model(
        "SecurityRates",
        __base__=_Doc,
        __doc__="The frames of each check per second of the window.",
        **{
            k.name: (float, Field(description=f"{k.title}, frames per second"))
            for k in SECURITY_KPIS
        },
    )


if TYPE_CHECKING:
    Direction = Any
    SliceKpis = Any
    KpiPoint = Any
else:
    Direction = create_model(
        "Direction",
        __base__=_Doc,
        **{kpi.name: _traffic_field(kpi) for kpi in TRAFFIC_KPIS},
        **{kpi.name: _latency_field(kpi) for kpi in DIRECTION_LATENCY},
        loss=(Loss, ...),
    )


class SliceEnergy(_Doc):
    """A slice's energy over the interval: cycles by source (bpf is part of
    the softirq and process cycles, Sauron's own share), joules (dynamic,
    plus the idle share the node's rule gives), and per-unit figures of the
    traffic that entered the UPF (null without traffic)."""

    cycles_softirq: float
    cycles_process: float
    cycles_bpf: float
    dynamic_joules: float
    idle_joules: float
    joules: float
    watts: float
    packets: int
    bytes: int
    joules_per_gb: float | None
    microjoules_per_packet: float | None
    cumulative_joules: float
    n3_octets: int = Field(
        description="uplink and downlink octets of the slice's G-PDUs on N3 (inner IP "
        "packets): the volume the data-volume method splits by"
    )
    volume_share: float = Field(description="the slice's share of every slice's n3_octets")
    volume_joules: float = Field(
        description="the second method: the node's attributed joules times volume_share "
        "(TS 23.501's UPF energy per S-NSSAI by data volume), beside `joules` (CPU time)"
    )
    cumulative_volume_joules: float


class NodeEnergy(_Doc):
    """The node over the interval, and how the figures were made: the power
    model (`method`: rapl powercap, rapl perf or profile), the profile, the
    cycle source. attributed + unattributed = joules."""

    method: str
    energy_source: str
    profile: str
    profile_reason: str
    cycle_source: str
    idle_rule: str
    cpus: int
    frequency_mhz: float
    busy_ratio: float
    busy_cycles: float
    stolen_seconds: float
    joules_per_gigacycle: float
    cycles_softirq: float
    #: of cycles_softirq, the node's own: softirq work of packets Sauron did
    #: not handle, given to no slice
    cycles_softirq_node: float
    #: how cycles_softirq split: the stack's work on packets received on
    #: Sauron's links, on other links' packets, and no packet's (of which
    #: the slices get the share of the packets received that were theirs)
    cycles_softirq_sauron_links: float
    cycles_softirq_other_links: float
    cycles_softirq_unowned: float
    #: packets the packet softirqs received, and those of them Sauron handled:
    #: each CPU's softirq cycles go to the slices in that share
    softirq_packets: int
    softirq_packets_sauron: int
    cycles_process: float
    cycles_bpf: float
    cycles_observer: float
    dynamic_joules: float
    idle_joules: float
    joules: float
    watts: float
    attributed_joules: float
    unattributed_joules: float
    capped: bool
    cumulative_joules: float
    #: of the interval, the time no agent ran (the first interval after a
    #: restart covers it): no energy was measured for it
    unmeasured_seconds: float
    notes: list[str]


class EnergyReport(_Doc):
    """Energy summed over a window (default: the latest interval)."""

    available: bool
    reason: str | None
    since: float | None
    until: float | None
    interval_s: float
    node: NodeEnergy | None
    slices: dict[str, SliceEnergy]


class SlaCheck(_Doc):
    """One SLA target checked in the interval: its limit, the value
    measured, and whether it held (floor: a minimum, not a maximum)."""

    target: str
    limit: float
    value: float
    ok: bool
    floor: bool


if not TYPE_CHECKING:
    SliceKpis = create_model(
        "SliceKpis",
        __base__=_Doc,
        **{d: (Direction, ...) for d in DIRECTIONS},
        **{kpi.name: _latency_field(kpi) for kpi in SLICE_LATENCY},
        active_teids=(int, ...),
        active_ues=(int, ...),
        sla=(SlaStatus, ...),
        checks=(list[SlaCheck], ...),
        energy=(SliceEnergy | None, ...),
        security=(
            SecurityFrames | None,
            Field(description="the interval's frames failing each check; null: checks off"),
        ),
    )
    KpiPoint = create_model(
        "KpiPoint", __base__=SliceKpis, time=(float, ...), interval_s=(float, ...)
    )


class Snssai(_Doc):
    sst: int
    sd: str | None


class SliceDoc(_Doc):
    """A catalog slice, or `unclassified` (id 0): the traffic no catalog
    slice claims, with KPIs like a slice's but no S-NSSAI and no SLA."""

    name: str
    id: int
    snssai: Snssai | None = Field(
        description="null for `unclassified`: traffic no slice claims has no S-NSSAI of its own"
    )
    description: str
    sla_targets: dict[str, object]
    status: SlaStatus
    kpis: KpiPoint | None


class SliceList(_Doc):
    slices: list[SliceDoc]


class KpiSeries(_Doc):
    slice: str
    points: list[KpiPoint]


class Percentile(_Doc):
    value: float
    error: float


class Bucket(_Doc):
    index: int
    lower: float
    upper: float | None
    count: int


class BucketBounds(_Doc):
    index: int
    lower: float
    upper: float | None


class GeometryOf(_Doc):
    unit: Literal["ms", "packets"]
    buckets: list[BucketBounds]


class TrafficKpiDoc(_Doc):
    name: str
    unit: str
    aggregate: Literal["sum", "rate", "last"]
    help: str


class LatencyKpiDoc(_Doc):
    name: str
    title: str
    help: str
    unit: str
    directions: list[Literal["uplink", "downlink"]]
    per_direction: bool = Field(
        description="under each direction of a KPI point; else once per slice, kept "
        "under its one direction"
    )
    prometheus: str
    sla_key: str


class SecurityKpiDoc(_Doc):
    """A security check: uplink G-PDUs that failed it, per slice."""

    name: str
    title: str
    help: str
    unit: str
    sla_key: str = Field(description="its limit in the catalog, in frames per second")


class KpiTable(_Doc):
    """The KPIs this agent measures (sauron/abi/kpis.py): their names in
    every document, their units, and their names in Prometheus and in the
    catalog's SLA targets."""

    traffic: list[TrafficKpiDoc]
    latency: list[LatencyKpiDoc]
    security: list[SecurityKpiDoc]


class Geometries(_Doc):
    """The bounds of every histogram bucket, by index: what the bucket
    indexes of `buckets=true` documents mean."""

    latency: GeometryOf
    loss_burst: GeometryOf


class HistogramDoc(_Doc):
    slice: str
    metric: str = Field(json_schema_extra={"enum": list(HISTOGRAMS)})
    direction: Literal["uplink", "downlink"] | None
    unit: Literal["ms", "packets"]
    intervals: int
    since: float | None
    until: float | None
    count: int
    sum: float | None
    max: float | None
    percentiles: dict[str, Percentile | None]
    buckets: list[Bucket]

    @field_validator("metric")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in HISTOGRAMS:
            raise ValueError(f"metric must be one of {', '.join(HISTOGRAMS)}, not {value!r}")
        return value


class PduSessionRef(_Doc):
    """The learned PDU session a TEID or UE address belongs to."""

    source: str
    seid: str | None
    supi: str | None
    dnn: str | None
    ue_ip: str | None


class SessionDoc(_Doc):
    teid: str | None
    ue_address: str | None
    qfi: int | None
    uplink_packets: int
    downlink_packets: int
    uplink_bytes: int
    downlink_bytes: int
    bytes: int
    #: null when no learned session owns the TEID or address
    pdu_session: PduSessionRef | None


class Sessions(_Doc):
    slice: str
    by: Literal["teid", "ue"]
    time: float | None
    interval_s: float | None
    active: int
    sessions: list[SessionDoc]


class TunnelDoc(_Doc):
    teid: str
    address: str | None
    interface: str
    end: Literal["upf", "peer"]


class SnssaiDoc(_Doc):
    sst: int
    sd: str | None


class PduSessionDoc(_Doc):
    """A PDU session learned from the control plane."""

    source: Literal["pfcp", "smf"]
    seid: str | None
    up_seid: str | None
    smf: str | None
    upf: str | None
    supi: str | None
    teids: list[str]
    tunnels: list[TunnelDoc]
    ue_ip: str | None
    ue_addresses: list[str]
    snssai: SnssaiDoc | None
    dnn: str | None
    network_instances: list[str]
    qfis: list[int]
    slice: str | None
    slice_rule: str | None
    first_seen: float
    last_seen: float
    ended: float | None


class PduSessions(_Doc):
    total: int
    count: int
    sessions: list[PduSessionDoc]
    #: where sessions come from and how that goes (learner counts, feeds)
    sources: dict[str, Any]


class ViolationDoc(_Doc):
    """An SLA violation. It closes as `recovered` after `close_good` passed
    checks of its target in a row, or as `not measured` when no interval
    checked its target for a whole `window` (the slice stopped carrying what
    the target needs): the end is that interval's."""

    slice: str
    target: str
    limit: float
    worst: float
    started_interval: int
    started_at: float
    ended_interval: int | None
    ended_at: float | None
    end_reason: EndReason | None = Field(description="why it closed; null while open")
    intervals: int
    bad_intervals: int
    diagnosis: str | None = Field(
        default=None,
        description="the latest diagnosis of its target while it was open, in one sentence "
        "(GET /api/v1/slices/{name}/diagnosis has its factors)",
    )
    evidence: str | None = Field(
        default=None,
        description="the pcapng of its slice's frame heads (outer and inner headers) "
        "while it was open, on the agent's host; null: none was written",
    )
    open: bool


class SlaRule(_Doc):
    window: int
    open_bad: int
    close_good: int


class SlaReport(_Doc):
    interval: int
    rule: SlaRule
    status: dict[str, SlaStatus]
    events: list[ViolationDoc]


class DeliveryHealth(_Doc):
    """An exporter that pushes losslessly: starting, publishing, spooling
    (the server is away; what it sends waits on disk), rejected (the server
    refuses who we are) or stopped. Its lines are InfluxDB points or
    remote-write samples."""

    state: str
    url: str | None
    points_written: int
    points_queued: int
    points_spooled: int
    points_replayed: int
    points_dropped: int
    retries: int
    spool_points: int
    spool_bytes: int
    last_success: float | None
    last_error: str


class PublisherHealth(DeliveryHealth):
    """The InfluxDB publisher."""

    bucket: str


class RemoteWriteHealth(DeliveryHealth):
    """The Prometheus remote-write exporter."""


class OtlpHealth(_Doc):
    """The OTLP exporter: starting, exporting, failing (the endpoint is
    away or refuses; the next export that succeeds carries every count, as
    counters and histograms are cumulative) or stopped."""

    state: str
    endpoint: str
    exports_ok: int
    exports_failed: int
    #: intervals replaced by a newer one before they could be sent
    intervals_skipped: int
    last_success: float | None
    last_error: str


class DataPathHealth(_Doc):
    """How the agent came by its data path: built (none was pinned),
    adopted (a pinned one taken over, counting on; resumed_after_s is the
    time no agent ran, which the first interval covers) or replaced (an
    older build's programs replaced; note says what was not carried over)."""

    how: str
    build: str
    folder: str
    seconds: float
    replaced: list[str] = []
    resumed_after_s: float | None = None
    note: str | None = None


class Health(_Doc):
    status: str
    last_interval: float | None = None
    data_path: DataPathHealth | None = None
    publisher: PublisherHealth | None = None
    remote_write: RemoteWriteHealth | None = None
    otlp: OtlpHealth | None = None


class FactorDoc(_Doc):
    """One cause of a failing figure: its share of it (0-1), the figure in
    words, the numbers it rests on, and how they were measured."""

    name: str = Field(
        description="run_queue_wait, futex_wait, inside_upf, radio_side, socket_overflow, "
        "backlog_drops, tun_drops"
    )
    share: float
    figure: str
    evidence: dict[str, Any]
    method: str


class DiagnosisDoc(_Doc):
    """The factors of one failing target in one degraded interval, most
    contributing first."""

    time: float = Field(description="end of the interval it explains (unix s)")
    target: str
    limit: float
    value: float
    summary: str
    factors: list[FactorDoc]
    neighbour: dict[str, Any] | None = Field(
        description="the slice whose load rose meanwhile: name, mbps, baseline_mbps"
    )
    unmeasured: list[str]


class EpisodeDoc(_Doc):
    """The degradation being diagnosed (its tail of healthy intervals included)."""

    began_interval: int
    began_at: float = Field(description="end of the interval it began in (unix s)")
    last_degraded_interval: int
    targets: list[str]


class DiagnosisProbeDoc(_Doc):
    """The kernel probe: available (built and opened), attached now (only
    while some slice is degraded), and why it is not available."""

    available: bool
    attached: bool
    missing: str


class EvidenceFileDoc(_Doc):
    """A violation's pcapng: the heads of its slice's frames while it was open."""

    path: str = Field(description="on the agent's host")
    target: str
    started_at: float
    frames: int
    bytes: int
    capped: bool = Field(description="diagnosis.evidence.max_file_mib reached: it grows no more")


class EvidenceDoc(_Doc):
    available: bool
    missing: str = Field(description="why no frame is kept, when none is")
    files: list[EvidenceFileDoc] = Field(description="newest first")


class DiagnosisReport(_Doc):
    slice: str
    enabled: bool = Field(description="false: diagnosis.enabled is false in the configuration")
    probe: DiagnosisProbeDoc | None
    episode: EpisodeDoc | None
    diagnoses: list[DiagnosisDoc] = Field(description="newest first")
    evidence: EvidenceDoc | None = Field(default=None, description="null: diagnosis is off")


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    param: str | None = None


class SnapshotDoc(_Doc):
    """One interval of every slice: each event of the live stream."""

    time: float
    interval_s: float
    slices: dict[str, SliceKpis]
    energy: NodeEnergy | None


PmUnit = Literal["packets", "octets", "bit/J"]
EnergyMethod = Literal["cpu_time", "data_volume"]


class GranularityPeriod(_Doc):
    """The span the measurements cover (unix seconds): the agent's latest
    interval, or the intervals of the window asked for."""

    begin: float
    end: float
    seconds: float
    intervals: int


class Measurement(_Doc):
    """One measurement under its 3GPP name, with the clause that defines it."""

    name: str = Field(description="the 3GPP name, e.g. GTP.InDataPktN3UPF.SNSSAI")
    clause: str = Field(description="the specification and clause that define it")
    value: float | None = Field(description="null when it cannot be computed (no energy)")
    unit: PmUnit
    #: for energy efficiency: the slice energy it divides by, by attribution method
    energy_method: EnergyMethod | None = None


class SlicePm(_Doc):
    """A catalog slice's measurements, by S-NSSAI (SST-SD, as TS 23.003 writes it)."""

    slice: str
    snssai: str
    sst: int
    sd: str | None
    measurements: list[Measurement]


class PmReport(_Doc):
    """A 3GPP performance-measurement view of each slice (TS 28.552 §5.4.1
    per S-NSSAI, TS 28.554 §6.7.2.2 energy efficiency) over one
    granularity period; null period before the first interval."""

    granularity_period: GranularityPeriod | None
    energy_available: bool
    slices: list[SlicePm]


#: the detections (sauron.security.detect)
Detection = Literal["teid_scan", "spoofing_ue"]
assert set(get_args(Detection)) == {TEID_SCAN, SPOOFING_UE}, "the detector's kinds"


class SecurityChecks(_Doc):
    """What the checks run with: the agent configuration's `security`
    section and the peers learned from the sessions' far tunnel ends."""

    enabled: bool
    peers_checked: bool = Field(
        description="unknown_peer is counted: some peer is configured or learned"
    )
    peers_configured: list[str]
    peers_learned: list[str]
    protected: list[str] = Field(description="prefixes of the core's own networks")
    scan_threshold: int = Field(
        description="distinct unknown TEIDs one source probes within a second: a teid_scan"
    )
    spoof_threshold: int = Field(
        description="sources not its own one session sends from within a second: a spoofing_ue"
    )
    quiet_s: float = Field(description="seconds without a frame after which a detection ends")


class SecurityEventDoc(_Doc):
    """A detection: a TEID scan (one peer sending to many unknown TEIDs)
    or a spoofing UE (one session sending from many sources not its own).
    It grows while frames come, and ends after `quiet_s` without one."""

    id: int = Field(description="the detector's number: the same while the detection grows")
    kind: Detection
    slice: str = Field(description="the slice most of its frames were classified into")
    peer: str = Field(description="the outer source address (the gNB or peer it came from)")
    teids: list[Annotated[str, Field(pattern="^0x[0-9a-f]{8}$")]] = Field(
        description="the first TEIDs seen, at most 8, in hex"
    )
    first_seen: float = Field(description="unix seconds")
    last_seen: float = Field(description="unix seconds")
    count: int = Field(description="frames")
    distinct: int = Field(description="distinct TEIDs (a scan) or sources (a spoofing UE)")
    ongoing: bool


class SliceSecurity(_Doc):
    """A slice's failed checks over the window; null: the checks were off
    in every interval of it."""

    frames: SecurityFrames | None
    per_s: SecurityRates | None


class _SecurityWindow(_Doc):
    enabled: bool = Field(description="false: security.enabled is false in the configuration")
    missing: str = Field(description="why the checks are off; empty when they run")
    checks: SecurityChecks | None = Field(description="null when the checks are off")
    since: float | None = Field(description="start of the window's first interval (unix s)")
    until: float | None = Field(description="end of its last interval (unix s)")
    seconds: float = Field(description="the intervals' length: what the rates divide by")
    intervals: int


class SecurityReport(_SecurityWindow):
    """Every slice's failed checks summed over a window (default: every
    interval the agent keeps), and the detections overlapping it, oldest
    first."""

    slices: dict[str, SliceSecurity]
    events: list[SecurityEventDoc]


class SliceSecurityReport(_SecurityWindow):
    """One slice's failed checks summed over a window, and its detections."""

    slice: str
    frames: SecurityFrames | None
    per_s: SecurityRates | None
    events: list[SecurityEventDoc]


#: every model the OpenAPI document names, by component name
COMPONENTS: tuple[type[BaseModel], ...] = (
    SliceList,
    SliceDoc,
    KpiSeries,
    HistogramDoc,
    Geometries,
    KpiTable,
    Sessions,
    PduSessions,
    SlaReport,
    EnergyReport,
    PmReport,
    Health,
    Problem,
    SnapshotDoc,
    DiagnosisReport,
    SecurityReport,
    SliceSecurityReport,
)
