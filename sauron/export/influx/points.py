"""The schema Sauron writes to InfluxDB, one snapshot at a time: which
measurements, tags and fields (docs/exporters.md's table is this module in prose).

Every point carries the snapshot's own time, so a point written twice (a
replay after an outage) lands on itself instead of counting twice; a
security detection carries the time it was first seen, so each update of a
growing one lands on the point of the one before. Counts
are the interval's deltas; histogram buckets are the interval's counts per
bucket (not cumulative), so buckets of many nodes and intervals add up and
a percentile can be taken from the merged histogram. Series stay bounded:
per slice, direction, metric and bucket; per-session series only when the
configuration asks for the top N sessions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import fields as dataclass_fields

from sauron.abi.histogram import GAP, Geometry
from sauron.abi.kpis import (
    DIRECTION_LATENCY,
    DIRECTIONS,
    LOSS_BURST,
    SECURITY_KPIS,
    SECURITY_MEASUREMENT,
    SLICE_LATENCY,
    TRAFFIC_KPIS,
    LatencyKpi,
)
from sauron.catalog import snssai_parts
from sauron.diagnosis.explain import Diagnosed
from sauron.export.influx.lineproto import FieldValue, line
from sauron.kpi.quality import NS_PER_MS, LatencyKpis
from sauron.kpi.records import DirectionKpis, SliceKpis, Snapshot
from sauron.kpi.sessions import SessionVolume
from sauron.kpi.sla import Violation
from sauron.security.detect import SecurityEvent

TRAFFIC = "sauron_traffic"
SLICE = "sauron_slice"
LATENCY_M = "sauron_latency"
LOSS = "sauron_loss"
HISTOGRAM = "sauron_histogram"
SLICE_ENERGY = "sauron_energy"
NODE_ENERGY = "sauron_node_energy"
SLA_EVENT = "sauron_sla_event"
SESSION = "sauron_session"
DIAGNOSIS = "sauron_diagnosis"
SECURITY = SECURITY_MEASUREMENT
SECURITY_EVENT = "sauron_security_event"

MEASUREMENTS = (
    TRAFFIC,
    SLICE,
    LATENCY_M,
    LOSS,
    HISTOGRAM,
    SLICE_ENERGY,
    NODE_ENERGY,
    SLA_EVENT,
    SESSION,
    DIAGNOSIS,
    SECURITY,
    SECURITY_EVENT,
)

TRAFFIC_FIELDS = tuple(k.name for k in TRAFFIC_KPIS)
LATENCY_FIELDS = ("mean_ms", "max_ms", "p50_ms", "p90_ms", "p99_ms", "p999_ms")
ENERGY_FIELDS = (
    "cycles_softirq",
    "cycles_process",
    "cycles_bpf",
    "dynamic_joules",
    "idle_joules",
    "joules",
    "watts",
    "packets",
    "bytes",
    "joules_per_gb",
    "microjoules_per_packet",
    "cumulative_joules",
    # the second method: the node's energy split by N3 data volume (TS 23.501)
    "n3_octets",
    "volume_share",
    "volume_joules",
    "cumulative_volume_joules",
)
#: node energy fields that are text (tags or left out) rather than numbers
_NODE_ENERGY_TEXT = {
    "method",
    "energy_source",
    "profile",
    "profile_reason",
    "cycle_source",
    "notes",
}


def time_ns(unix_s: float) -> int:
    """Unix seconds as integer nanoseconds, rounded to the microsecond so the
    same snapshot always gives the same timestamp."""
    return round(unix_s * 1e6) * 1000


def slice_tags(node: str, kpis: SliceKpis) -> dict[str, str]:
    """node, slice, and the S-NSSAI as sst and sd (absent when the slice has
    none: the unclassified traffic, an S-NSSAI without SD)."""
    return {"node": node, "slice": kpis.name, **snssai_parts(kpis.snssai)}


def le_text(geometry: Geometry, index: int, scale: float) -> str:
    """A bucket's upper bound as the `le` tag: the shortest decimal that
    reads back to the same number, or +Inf for the overflow bucket."""
    upper = geometry.upper(index)
    return "+Inf" if upper == float("inf") else repr(upper / scale)


def _bucket_points(
    tags: dict[str, str], geometry: Geometry, buckets: Mapping[int, int], scale: float, t: int
) -> Iterable[str]:
    for index in sorted(buckets):
        if buckets[index]:
            le = le_text(geometry, int(index), scale)
            yield line(HISTOGRAM, {**tags, "le": le}, {"count": buckets[index]}, t)


def _latency_points(
    tags: dict[str, str], kpi: LatencyKpi, direction: str, k: LatencyKpis, t: int
) -> Iterable[str]:
    if k.samples <= 0:
        return
    at = {**tags, "metric": kpi.name, "direction": direction}
    values: dict[str, FieldValue | None] = {"samples": k.samples, "sum_ms": k.sum_ns / NS_PER_MS}
    values.update({f: getattr(k, f) for f in LATENCY_FIELDS})
    yield line(LATENCY_M, at, values, t)
    yield from _bucket_points(at, kpi.geometry, k.buckets, NS_PER_MS, t)


def _direction_points(tags: dict[str, str], direction: str, k: DirectionKpis, t: int) -> list[str]:
    at = {**tags, "direction": direction}
    out = [line(TRAFFIC, at, {f: getattr(k, f) for f in TRAFFIC_FIELDS}, t)]
    for kpi in DIRECTION_LATENCY:
        out += _latency_points(tags, kpi, direction, k.latency[kpi.name], t)
    loss = k.loss
    by_source: dict[str, dict[str, FieldValue | None]] = {
        "transit": {
            "lost": loss.transit_lost,
            "measured": loss.transit_resolved,
            "ratio": loss.transit_ratio,
        },
        "sequence": {
            "lost": loss.sequence_lost,
            "measured": loss.sequence_lost + loss.sequence_received,
            "ratio": loss.sequence_ratio,
            "reordered": loss.sequence_reordered,
            "duplicates": loss.sequence_duplicates,
        },
        "tcp": {
            "lost": loss.tcp_retransmissions,
            "measured": loss.tcp_segments,
            "ratio": loss.tcp_retransmission_ratio,
        },
    }
    for source, values in by_source.items():
        if values["measured"]:
            out.append(line(LOSS, {**at, "source": source}, values, t))
    if loss.burst_buckets:
        burst_tags = {**tags, "metric": LOSS_BURST, "direction": direction}
        out += _bucket_points(burst_tags, GAP, loss.burst_buckets, 1.0, t)
    return out


def slice_points(node: str, kpis: SliceKpis, t: int, open_violations: int) -> list[str]:
    tags = slice_tags(node, kpis)
    out = [
        line(
            SLICE,
            tags,
            {
                "active_teids": kpis.active_teids,
                "active_ues": kpis.active_ues,
                "sla_status": kpis.sla,
                "sla_open_violations": open_violations,
            },
            t,
        )
    ]
    for direction in DIRECTIONS:
        out += _direction_points(tags, direction, getattr(kpis, direction), t)
    for kpi in SLICE_LATENCY:
        out += _latency_points(tags, kpi, kpi.directions[0], kpis.latency[kpi.name], t)
    if kpis.security is not None:
        counts = {k.name: kpis.security[k.name] for k in SECURITY_KPIS}
        out.append(line(SECURITY, tags, counts, t))
    return out


def security_event_point(node: str, event: SecurityEvent, slice_name: str, snssai: str) -> str:
    """A detection as it stands, at the time it was first seen: each
    update of a growing one (same tags, same time) overwrites the point
    before, and the last one written says how it ended. `slice_name`: the
    slice it opened in. The peer (the outer source of its latest frame) is a
    field: it may change while the event grows, and the point must not."""
    tags = {"node": node, "slice": slice_name, "kind": event.kind, "event": str(event.id)}
    tags.update(snssai_parts(snssai))
    values: dict[str, FieldValue | None] = {
        "peer": event.peer or None,
        "count": event.count,
        "distinct": event.distinct,
        "teids": ",".join(f"0x{teid:08x}" for teid in event.teids) or None,
        "last_seen": float(event.last_seen),
        "ongoing": event.ongoing,
    }
    return line(SECURITY_EVENT, tags, values, time_ns(event.first_seen))


def snapshot_points(
    node: str, snap: Snapshot, open_violations: Mapping[str, int] | None = None
) -> list[str]:
    """Every point of one snapshot."""
    t = time_ns(snap.time)
    opened = open_violations or {}
    out: list[str] = []
    for name, kpis in snap.slices.items():
        out += slice_points(node, kpis, t, opened.get(name, 0))
    by_id = {kpis.slice_id: kpis for kpis in snap.slices.values()}
    for event in snap.security_events:
        found = by_id.get(event.slice_id)
        name, snssai = (found.name, found.snssai) if found else (f"slice-{event.slice_id}", "")
        out.append(security_event_point(node, event, name, snssai))
    node_energy = snap.energy
    if node_energy is None:
        return out
    method = {"node": node, "method": node_energy.method, "profile": node_energy.profile or "none"}
    for kpis in snap.slices.values():
        if kpis.energy is not None:
            values = {f: getattr(kpis.energy, f) for f in ENERGY_FIELDS}
            out.append(line(SLICE_ENERGY, {**slice_tags(node, kpis), **method}, values, t))
    node_values: dict[str, FieldValue | None] = {
        f.name: getattr(node_energy, f.name)
        for f in dataclass_fields(node_energy)
        if f.name not in _NODE_ENERGY_TEXT
    }
    node_values["interval_s"] = snap.interval_s
    out.append(line(NODE_ENERGY, method, node_values, t))
    return out


def violation_point(node: str, v: Violation, change: str, snssai: str) -> str:
    """An SLA violation opening or closing, at the time it did; `change` is
    "opened" or "closed", and a closed one says why in `end_reason`
    ("recovered" or "not measured"): a string field, not a tag, so the
    reason adds no series."""
    tags = {"node": node, "slice": v.slice_name, "target": v.target, "change": change}
    tags.update(snssai_parts(snssai))
    at = v.started_at if change == "opened" else (v.ended_at or v.started_at)
    values: dict[str, FieldValue | None] = {
        "limit": v.limit,
        "worst": v.worst,
        "started_at": v.started_at,
        "ended_at": v.ended_at,
        "end_reason": v.end_reason,
        "intervals": v.intervals,
        "bad_intervals": v.bad_intervals,
        "diagnosis": v.diagnosis,
        "evidence": v.evidence,
    }
    return line(SLA_EVENT, tags, values, time_ns(at))


def session_points(
    node: str, kpis: SliceKpis, sessions: Iterable[SessionVolume], t: int
) -> list[str]:
    """The top sessions of one slice (only when the configuration asks)."""
    tags = slice_tags(node, kpis)
    out = []
    for s in sessions:
        key = {"teid": f"0x{s.teid:08x}"} if s.teid is not None else {}
        if s.ue_address:
            key["ue"] = s.ue_address
        if not key:
            continue
        values: dict[str, FieldValue | None] = {
            "uplink_packets": s.uplink_packets,
            "downlink_packets": s.downlink_packets,
            "uplink_bytes": s.uplink_bytes,
            "downlink_bytes": s.downlink_bytes,
            "qfi": s.qfi,
        }
        out.append(line(SESSION, {**tags, **key}, values, t))
    return out


#: the fields of a diagnosis's points that are not its evidence
_DIAGNOSIS_FIELDS = {"share", "figure", "method", "limit", "value", "summary"}


def _evidence_fields(evidence: Mapping[str, object], prefix: str = "") -> dict[str, FieldValue]:
    """A factor's evidence as fields: numbers stay numbers, a nested
    mapping (the task that held the CPU) is flattened with its key as
    prefix ("held_by_pid"), anything else is its text. A key that would
    shadow a field of the point itself is prefixed "evidence_"."""
    out: dict[str, FieldValue] = {}
    for key, value in evidence.items():
        name = f"{prefix}{key}"
        if not prefix and name in _DIAGNOSIS_FIELDS:
            name = f"evidence_{name}"
        if isinstance(value, Mapping):
            out.update(_evidence_fields(value, f"{name}_"))
        elif isinstance(value, bool | int | float | str):
            out[name] = value
        else:
            out[name] = str(value)
    return out


def diagnosis_points(node: str, diagnosed: Diagnosed, snssai: str) -> list[str]:
    """One diagnosis, at the end of the interval it explains: one point
    without `factor` and `rank` tags holding the diagnosis itself (its
    summary, what could not be measured, the neighbour named), then one
    point per factor, `rank` 1 the most contributing, with its share, its
    figure in words, its method and its evidence. Every point carries the
    failing target's limit and value, so a factor's part of the figure is
    share x value without a join. The target and rank tags keep two
    diagnoses of one interval, and two factors of one name (two network
    functions' waits), apart."""
    d = diagnosed.diagnosis
    tags = {"node": node, "slice": d.slice_name, "target": d.failing.target}
    tags.update(snssai_parts(snssai))
    t = time_ns(diagnosed.time)
    failing: dict[str, FieldValue | None] = {
        "limit": float(d.failing.limit),
        "value": float(d.failing.value),
    }
    head: dict[str, FieldValue | None] = {
        "summary": d.summary,
        **failing,
        "factors": len(d.factors),
        "unmeasured": "; ".join(d.unmeasured) or None,
    }
    if d.neighbour is not None:
        name, mbps, baseline_mbps = d.neighbour
        head.update(
            {
                "neighbour": name,
                "neighbour_mbps": float(mbps),
                "neighbour_baseline_mbps": float(baseline_mbps),
            }
        )
    out = [line(DIAGNOSIS, tags, head, t)]
    for rank, factor in enumerate(d.factors, start=1):
        values: dict[str, FieldValue | None] = {
            "share": float(factor.share),
            "figure": factor.figure,
            "method": factor.method,
            **failing,
            **_evidence_fields(factor.evidence),
        }
        at = {**tags, "factor": factor.name, "rank": str(rank)}
        out.append(line(DIAGNOSIS, at, values, t))
    return out
