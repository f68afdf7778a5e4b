"""The JSON documents the API serves, built from engine state; one function
per document, shared by the REST routes and the live stream. Their schemas
are in schemas.py."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sauron.abi import layout
from sauron.abi.histogram import QUANTILES, Geometry, Histogram
from sauron.abi.kpis import (
    DIRECTION_LATENCY,
    DIRECTIONS,
    LATENCY_KPIS,
    SECURITY_KPIS,
    SECURITY_SLA_KEY,
    SLICE_LATENCY,
    TRAFFIC_KPIS,
)
from sauron.catalog import UNCLASSIFIED_NAME, Slice
from sauron.control.record import ControlSession
from sauron.diagnosis.evidence import EvidenceFile
from sauron.diagnosis.explain import Diagnosed
from sauron.diagnosis.trigger import Episode
from sauron.energy.model import merge_node_energy, merge_slice_energy
from sauron.kpi.pm import EE_CLAUSE, EE_NAME, EE_UNIT, N3_MEASUREMENTS, energy_efficiency
from sauron.kpi.quality import LatencyKpis, LossKpis
from sauron.kpi.records import DirectionKpis, N3Volume, SliceKpis, Snapshot
from sauron.kpi.sessions import SessionVolume
from sauron.kpi.sla import Violation


def latency_doc(k: LatencyKpis, buckets: bool = False) -> dict[str, Any]:
    """A latency KPI; with `buckets`, its raw bucket counts by index (the
    geometry route gives each index its bounds), else without them (the
    histogram route has them merged over a window)."""
    doc = asdict(k)
    del doc["buckets"], doc["sum_ns"]
    if buckets:
        doc["buckets"] = {str(i): n for i, n in sorted(k.buckets.items())}
    return doc


def loss_doc(k: LossKpis) -> dict[str, Any]:
    doc = asdict(k)
    del doc["burst_buckets"]
    return doc


def direction_doc(k: DirectionKpis, buckets: bool = False) -> dict[str, Any]:
    """The traffic and latency KPIs the table lists, and the loss."""
    doc: dict[str, Any] = {kpi.name: getattr(k, kpi.name) for kpi in TRAFFIC_KPIS}
    for latency in DIRECTION_LATENCY:
        doc[latency.name] = latency_doc(k.latency[latency.name], buckets)
    doc["loss"] = loss_doc(k.loss)
    return doc


def kpi_doc(k: SliceKpis, buckets: bool = False) -> dict[str, Any]:
    return {
        **{d: direction_doc(getattr(k, d), buckets) for d in DIRECTIONS},
        **{kpi.name: latency_doc(k.latency[kpi.name], buckets) for kpi in SLICE_LATENCY},
        "active_teids": k.active_teids,
        "active_ues": k.active_ues,
        "sla": k.sla,
        "checks": [
            {"target": c.target, "limit": c.limit, "value": c.value, "ok": c.ok, "floor": c.floor}
            for c in k.checks
        ],
        "energy": None if k.energy is None else asdict(k.energy),
        "security": k.security,
    }


def point_doc(snap: Snapshot, k: SliceKpis, buckets: bool = False) -> dict[str, Any]:
    return {"time": snap.time, "interval_s": snap.interval_s, **kpi_doc(k, buckets)}


def snapshot_doc(snap: Snapshot, buckets: bool = False) -> dict[str, Any]:
    """One interval, every slice: what the live stream sends."""
    return {
        "time": snap.time,
        "interval_s": snap.interval_s,
        "slices": {name: kpi_doc(k, buckets) for name, k in snap.slices.items()},
        "energy": None if snap.energy is None else asdict(snap.energy),
    }


def slice_doc(s: Slice, latest: Snapshot | None, status: str) -> dict[str, Any]:
    snssai: dict[str, Any] = {
        "sst": s.spec.snssai.sst,
        "sd": None if s.spec.snssai.sd is None else f"{s.spec.snssai.sd:06x}",
    }
    targets = s.spec.sla.model_dump(exclude_none=True)
    return _slice_entry(s.name, s.id, snssai, s.spec.description, targets, status, latest)


#: what slice 0 carries, for its document
UNCLASSIFIED_DESCRIPTION = (
    "Traffic no catalog slice claims: GTP-U error indications, router "
    "solicitations, traffic of ended sessions, UEs outside every slice's rules. "
    "It has KPIs, but no S-NSSAI and no SLA."
)


def unclassified_doc(latest: Snapshot | None, status: str) -> dict[str, Any]:
    """Slice 0, which is in no catalog: KPIs like a slice's, no S-NSSAI,
    no SLA targets."""
    return _slice_entry(
        UNCLASSIFIED_NAME,
        layout.UNCLASSIFIED_SLICE,
        None,
        UNCLASSIFIED_DESCRIPTION,
        {},
        status,
        latest,
    )


def _slice_entry(
    name: str,
    slice_id: int,
    snssai: dict[str, Any] | None,
    description: str,
    sla_targets: dict[str, Any],
    status: str,
    latest: Snapshot | None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": name,
        "id": slice_id,
        "snssai": snssai,
        "description": description,
        "sla_targets": sla_targets,
        "status": status,
        "kpis": None,
    }
    if latest is not None and name in latest.slices:
        doc["kpis"] = point_doc(latest, latest.slices[name])
    return doc


def violation_doc(v: Violation) -> dict[str, Any]:
    return {
        "slice": v.slice_name,
        "target": v.target,
        "limit": v.limit,
        "worst": v.worst,
        "started_interval": v.started_interval,
        "started_at": v.started_at,
        "ended_interval": v.ended_interval,
        "ended_at": v.ended_at,
        "end_reason": v.end_reason,
        "intervals": v.intervals,
        "bad_intervals": v.bad_intervals,
        "open": v.open,
        "diagnosis": v.diagnosis,
        "evidence": v.evidence,
    }


def pdu_session_ref(session: ControlSession | None) -> dict[str, Any] | None:
    if session is None:
        return None
    doc = session.doc(None)
    return {k: doc[k] for k in ("source", "seid", "supi", "dnn", "ue_ip")}


def session_doc(v: SessionVolume, owner: ControlSession | None = None) -> dict[str, Any]:
    return {
        "teid": None if v.teid is None else f"0x{v.teid:08x}",
        "ue_address": v.ue_address,
        "qfi": v.qfi,
        "uplink_packets": v.uplink_packets,
        "downlink_packets": v.downlink_packets,
        "uplink_bytes": v.uplink_bytes,
        "downlink_bytes": v.downlink_bytes,
        "bytes": v.bytes,
        "pdu_session": pdu_session_ref(owner),
    }


def _bound(value: float, scale: float) -> float | None:
    return None if value == float("inf") else value / scale


def geometry_doc(g: Geometry, scale: float, unit: str) -> dict[str, Any]:
    """Every bucket's bounds, values divided by `scale`."""
    return {
        "unit": unit,
        "buckets": [
            {"index": i, "lower": g.lower(i) / scale, "upper": _bound(g.upper(i), scale)}
            for i in range(g.buckets)
        ],
    }


def histogram_doc(h: Histogram, scale: float, exact_sum: bool = True) -> dict[str, Any]:
    """Non-empty buckets with their bounds (lower inclusive, upper exclusive,
    null upper for the overflow bucket) and percentiles with their error,
    values divided by `scale` (1e6: nanoseconds to milliseconds). The sum
    and maximum are null where the data path does not keep them."""
    g: Geometry = h.geometry
    percentiles: dict[str, Any] = {}
    for name, q in QUANTILES:
        est = h.percentile(q)
        percentiles[name] = (
            None if est is None else {"value": est.value / scale, "error": est.error / scale}
        )
    return {
        "count": h.count,
        "sum": h.total / scale if exact_sum else None,
        "max": h.maximum / scale if h.maximum else None,
        "percentiles": percentiles,
        "buckets": [
            {
                "index": i,
                "lower": g.lower(i) / scale,
                "upper": _bound(g.upper(i), scale),
                "count": n,
            }
            for i, n in enumerate(h.buckets)
            if n
        ],
    }


def energy_doc(snaps: list[Snapshot], reason: str | None) -> dict[str, Any]:
    """Energy over the snapshots given (summed), or why there is none."""
    measured = [s for s in snaps if s.energy is not None]
    doc: dict[str, Any] = {
        "available": reason is None,
        "reason": reason,
        "since": None,
        "until": None,
        "interval_s": 0.0,
        "node": None,
        "slices": {},
    }
    if not measured:
        return doc
    span = sum(s.interval_s for s in measured)
    doc["since"] = measured[0].time - measured[0].interval_s
    doc["until"] = measured[-1].time
    doc["interval_s"] = span
    doc["node"] = asdict(merge_node_energy([s.energy for s in measured if s.energy], span))
    names = measured[-1].slices.keys()
    for name in names:
        parts = [e for s in measured if (e := s.slices[name].energy) is not None]
        if parts:
            doc["slices"][name] = asdict(merge_slice_energy(parts, span))
    return doc


def pm_doc(snaps: list[Snapshot], slices: tuple[Slice, ...], energy: bool) -> dict[str, Any]:
    """The 3GPP view of each catalog slice over the snapshots given (one
    granularity period): TS 28.552's N3 measurements per S-NSSAI, summed,
    and TS 28.554's energy efficiency by each attribution method (null
    without energy). `unclassified` has no S-NSSAI, so it is not listed."""
    doc: dict[str, Any] = {"granularity_period": None, "energy_available": energy, "slices": []}
    if not snaps:
        return doc
    doc["granularity_period"] = {
        "begin": snaps[0].time - snaps[0].interval_s,
        "end": snaps[-1].time,
        "seconds": sum(s.interval_s for s in snaps),
        "intervals": len(snaps),
    }
    for s in slices:
        volume = N3Volume()
        for snap in snaps:
            volume.add(snap.slices[s.name].n3)
        measurements: list[dict[str, Any]] = [
            {"name": m.name, "clause": m.clause, "value": m.value(volume), "unit": m.unit}
            for m in N3_MEASUREMENTS
        ]
        parts = [e for snap in snaps if (e := snap.slices[s.name].energy) is not None]
        merged = merge_slice_energy(parts, doc["granularity_period"]["seconds"]) if parts else None
        for method, joules in (
            ("cpu_time", None if merged is None else merged.joules),
            ("data_volume", None if merged is None else merged.volume_joules),
        ):
            measurements.append(
                {
                    "name": EE_NAME,
                    "clause": EE_CLAUSE,
                    "value": None if joules is None else energy_efficiency(volume, joules),
                    "unit": EE_UNIT,
                    "energy_method": method,
                }
            )
        snssai = s.spec.snssai
        doc["slices"].append(
            {
                "slice": s.name,
                "snssai": str(snssai),
                "sst": snssai.sst,
                "sd": None if snssai.sd is None else f"{snssai.sd:06x}",
                "measurements": measurements,
            }
        )
    return doc


def kpi_table_doc() -> dict[str, Any]:
    """The KPI table, for clients that show whatever KPIs the agent has."""
    return {
        "traffic": [
            {"name": k.name, "unit": k.unit, "aggregate": k.aggregate.value, "help": k.help}
            for k in TRAFFIC_KPIS
        ],
        "latency": [
            {
                "name": k.name,
                "title": k.title,
                "help": k.help,
                "unit": k.unit,
                "directions": list(k.directions),
                "per_direction": k.per_direction,
                "prometheus": k.prometheus,
                "sla_key": k.sla_key,
            }
            for k in LATENCY_KPIS
        ],
        "security": [
            {
                "name": k.name,
                "title": k.title,
                "help": k.help,
                "unit": k.unit,
                "sla_key": f"{SECURITY_SLA_KEY}.{k.name}",
            }
            for k in SECURITY_KPIS
        ],
    }


def diagnosed_doc(d: Diagnosed) -> dict[str, Any]:
    found = d.diagnosis
    neighbour = found.neighbour
    return {
        "time": d.time,
        "target": found.failing.target,
        "limit": found.failing.limit,
        "value": found.failing.value,
        "summary": found.summary,
        "factors": [
            {
                "name": f.name,
                "share": f.share,
                "figure": f.figure,
                "evidence": f.evidence,
                "method": f.method,
            }
            for f in found.factors
        ],
        "neighbour": None
        if neighbour is None
        else {"name": neighbour[0], "mbps": neighbour[1], "baseline_mbps": neighbour[2]},
        "unmeasured": list(found.unmeasured),
    }


def evidence_doc(files: list[EvidenceFile], missing: str) -> dict[str, Any]:
    return {
        "available": not missing,
        "missing": missing,
        "files": [
            {
                "path": str(f.path),
                "target": f.target,
                "started_at": f.started_at,
                "frames": f.frames,
                "bytes": f.bytes,
                "capped": f.capped,
            }
            for f in files
        ],
    }


def episode_doc(e: Episode | None) -> dict[str, Any] | None:
    if e is None:
        return None
    return {
        "began_interval": e.began,
        "began_at": e.began_at,
        "last_degraded_interval": e.last_degraded,
        "targets": sorted(e.targets),
    }
