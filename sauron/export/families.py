"""The engine's measurements as metric families: name, kind, help and
samples, in no export's format. The one owner of what the metric exports
send and of their names: the Prometheus exposition (sauron.export.prometheus)
writes them as text, the OTLP exporter (sauron.export.otlp) as OpenTelemetry
data points. Names are Prometheus's (base units, `_total` on counters): the
KPI table (sauron.abi.kpis) names the latency families."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from sauron.abi import layout, points
from sauron.abi.histogram import Histogram
from sauron.abi.kpis import LATENCY_KPIS, SECURITY_FAMILY, SECURITY_KPIS
from sauron.bpf.maps import DataPlaneCounters
from sauron.catalog import Catalog, snssai_parts
from sauron.kpi.engine import KpiEngine
from sauron.kpi.records import Snapshot
from sauron.security.detect import SPOOFING_UE, TEID_SCAN

Kind = Literal["counter", "gauge", "histogram"]
Labels = dict[str, str]

#: the histograms' values are nanoseconds; the families' unit is the second
NS_PER_S = 1e9
LOSS_COUNTERS = (
    ("sauron_transit_matched_total", "transit_matched", "Sampled packets seen leaving the UPF."),
    ("sauron_sequence_received_total", "seq_received", "G-PDUs with a GTP-U sequence number."),
    ("sauron_sequence_lost_total", "seq_lost", "GTP-U sequence numbers never received."),
    ("sauron_sequence_reordered_total", "seq_reordered", "G-PDUs that arrived late."),
    ("sauron_tcp_data_segments_total", "tcp_data_segments", "Inner TCP segments with data."),
    ("sauron_tcp_retransmissions_total", "tcp_retransmissions", "Inner TCP segments sent again."),
)
TRAFFIC_COUNTERS = (
    ("sauron_packets_total", "packets", "Packets seen per slice, attach point and direction."),
    (
        "sauron_bytes_total",
        "bytes",
        "Frame bytes (L2 header included) per slice, attach point and direction.",
    ),
    (
        "sauron_inner_bytes_total",
        "inner_bytes",
        "Inner IP bytes per slice, attach point and direction.",
    ),
    (
        "sauron_malformed_total",
        "malformed",
        "Frames with an anomaly per slice, attach point and direction.",
    ),
)
SLA_STATES = ("met", "at risk", "violated")
#: the counter of the security detections opened (sauron.security.detect)
DETECTIONS_FAMILY = "sauron_security_detections_total"
DETECTION_KINDS = (TEID_SCAN, SPOOFING_UE)


@dataclass
class Family:
    """One metric: counters and gauges hold `samples` (labels, value; an
    int is a count, a float a measure), histograms `histograms` (labels,
    the agent's histogram of nanoseconds, exported in seconds)."""

    name: str
    kind: Kind
    help: str
    samples: list[tuple[Labels, int | float]] = field(default_factory=list)
    histograms: list[tuple[Labels, Histogram]] = field(default_factory=list)


def slice_labels(catalog: Catalog) -> dict[str, dict[str, str]]:
    """The one label set of a slice on every family: its name, its S-NSSAI
    as 3GPP writes it (SST-SD, TS 23.003) and both parts; empty for
    unclassified, which has none."""
    ids = {catalog.name_of(0): {"slice": catalog.name_of(0), "snssai": "", "sst": "", "sd": ""}}
    for s in catalog.slices:
        snssai = str(s.spec.snssai)
        ids[s.name] = {"slice": s.name, "snssai": snssai, "sst": "", "sd": ""}
        ids[s.name].update(snssai_parts(snssai))
    return ids


def engine_families(engine: KpiEngine) -> list[Family]:
    """What the engine measured, as of its latest tick: the data plane's
    monotonic counters per slice, attach point and direction, GTP-U message
    kinds, anomalies by reason, loss counters, latency histograms, and
    per-slice gauges of the latest interval."""
    c = engine.counters
    catalog = engine.catalog
    ids = slice_labels(catalog)
    slices = [(0, catalog.name_of(0)), *((s.id, s.name) for s in catalog.slices)]
    out: list[Family] = []
    for name, stat, help_text in TRAFFIC_COUNTERS:
        fam = Family(name, "counter", help_text)
        for sid, sname in slices:
            for point, pname in layout.POINT_NAMES.items():
                for d, dname in layout.DIRECTION_NAMES.items():
                    value = getattr(c.slice(point, sid, d), stat)
                    fam.samples.append(({**ids[sname], "point": pname, "direction": dname}, value))
        out.append(fam)
    fam = Family(
        "sauron_gtpu_messages_total", "counter", "GTP-U messages per slice, attach point and kind."
    )
    for sid, sname in slices:
        for point in (p.id for p in points.GTPU_POINTS):
            for kind, kname in layout.MSG_KIND_NAMES.items():
                total = sum(int(c.slice(point, sid, d).msg[kind]) for d in layout.DIRECTION_NAMES)
                labels = {**ids[sname], "point": layout.POINT_NAMES[point], "kind": kname}
                fam.samples.append((labels, total))
    out.append(fam)
    fam = Family(
        "sauron_anomalies_total",
        "counter",
        "Frames per anomaly reason (the first met) and attach point.",
    )
    for point, pname in layout.POINT_NAMES.items():
        for ev, reason in layout.ANOMALY_NAMES.items():
            fam.samples.append(({"point": pname, "reason": reason}, c.event(point, ev)))
    out.append(fam)
    zero = layout.MeasureStats()
    directed = [
        (sid, sname, d, dname)
        for sid, sname in slices
        for d, dname in layout.DIRECTION_NAMES.items()
    ]
    fam = Family(
        "sauron_transit_lost_total",
        "counter",
        "Sampled packets that entered the UPF and never left (stamp expired).",
    )
    for sid, sname, d, dname in directed:
        lost = c.transit_expired.get((sid, d), 0)
        fam.samples.append(({**ids[sname], "direction": dname}, lost))
    out.append(fam)
    for name, stat, help_text in LOSS_COUNTERS:
        fam = Family(name, "counter", help_text + " Per slice and direction.")
        for sid, sname, d, dname in directed:
            value = int(getattr(c.measure.get((sid, d), zero), stat))
            fam.samples.append(({**ids[sname], "direction": dname}, value))
        out.append(fam)
    for kpi in LATENCY_KPIS:
        per = "per slice and direction" if kpi.per_direction else "per slice"
        fam = Family(kpi.prometheus, "histogram", f"{kpi.help[0].upper()}{kpi.help[1:]}; {per}.")
        for sid, sname, d, dname in directed:
            if dname not in kpi.directions:
                continue
            h = c.latency.get((kpi.metric, sid, d)) or Histogram(kpi.geometry)
            labels = {**ids[sname]}
            if kpi.per_direction:
                labels["direction"] = dname
            fam.histograms.append((labels, h))
        out.append(fam)
    fam = Family(
        "sauron_gtpu_echo_rtt_seconds",
        "histogram",
        "GTP-U echo round trips per peer; initiator local: this node asked (path RTT), peer: the peer asked (our answer time).",
    )
    for (peer, initiator), h in sorted(c.peers.items()):
        labels = {"peer": peer, "initiator": "local" if initiator == layout.ECHO_LOCAL else "peer"}
        fam.histograms.append((labels, h))
    out.append(fam)
    if c.security_on or c.security.any():
        out.append(_security_family(c, slices, ids))
    latest = engine.history.latest()
    if latest is not None:
        out += _interval_families(latest, ids)
    fam = Family("sauron_sla_violated", "gauge", "1 while a violation of the slice's SLA is open.")
    for s in catalog.slices:
        fam.samples.append(({**ids[s.name]}, int(engine.sla.status(s.name) == "violated")))
    out.append(fam)
    out += _sla_state_families(engine, ids)
    if latest is not None and latest.energy is not None:
        out += _energy_families(latest, ids)
    return out


def _security_family(
    c: DataPlaneCounters, slices: list[tuple[int, str]], ids: Mapping[str, Labels]
) -> Family:
    """Every kind of every slice, zeros included, once the checks are on
    (and after, the counts kept): a series exists before its first frame,
    so rate() and increase() see that frame."""
    kinds = "; ".join(f"{k.name}: {k.help}" for k in SECURITY_KPIS)
    fam = Family(
        SECURITY_FAMILY,
        "counter",
        f"Uplink G-PDUs at N3/N9 that failed a security check, per slice and kind ({kinds}).",
    )
    for sid, sname in slices:
        for kind, kpi in enumerate(SECURITY_KPIS):
            fam.samples.append(({**ids[sname], "kind": kpi.name}, c.security_count(sid, kind)))
    return fam


def detection_family(catalog: Catalog, opened: Mapping[tuple[int, str], int]) -> Family:
    """The security detections opened since the detector began, by (slice
    id, detection kind) as sauron.security.detect's Detector.opened counts
    them: every kind of every slice, zeros included, and any slice the
    catalog no longer has."""
    ids = slice_labels(catalog)
    fam = Family(
        DETECTIONS_FAMILY,
        "counter",
        "Security detections opened per slice and kind (teid_scan: one outer source "
        "sending to many unknown TEIDs; spoofing_ue: one session sending from many "
        "sources it does not own).",
    )
    slice_ids = [0, *(s.id for s in catalog.slices)]
    slice_ids += sorted({sid for sid, _ in opened} - set(slice_ids))
    for sid in slice_ids:
        name = catalog.name_of(sid)
        labels = ids.get(name, {"slice": name, "snssai": "", "sst": "", "sd": ""})
        for kind in DETECTION_KINDS:
            fam.samples.append(({**labels, "kind": kind}, opened.get((sid, kind), 0)))
    return fam


def _interval_families(latest: Snapshot, ids: Mapping[str, Labels]) -> list[Family]:
    """The per-slice levels of the latest interval."""
    teids = Family(
        "sauron_active_teids", "gauge", "TEIDs that carried traffic in the last interval."
    )
    ues = Family(
        "sauron_active_ues", "gauge", "UE addresses that carried traffic in the last interval."
    )
    mbps = Family("sauron_throughput_mbps", "gauge", "Delivered throughput in the last interval.")
    for kpis in latest.slices.values():
        teids.samples.append(({**ids[kpis.name]}, kpis.active_teids))
        ues.samples.append(({**ids[kpis.name]}, kpis.active_ues))
        for dname in ("uplink", "downlink"):
            labels = {**ids[kpis.name], "direction": dname}
            mbps.samples.append((labels, float(getattr(kpis, dname).mbps)))
    return [teids, ues, mbps]


def _sla_state_families(engine: KpiEngine, ids: Mapping[str, Labels]) -> list[Family]:
    """Each slice's SLA state and each of its targets', one series per
    state (1 for the current one), as kube-state-metrics writes phases: an
    alert can ask for `state="at risk"` as well as `violated`."""
    slice_state = Family(
        "sauron_sla_state",
        "gauge",
        "1 for the slice's SLA state (met, at risk, violated; none while unmeasured).",
    )
    for s in engine.catalog.slices:
        status = engine.sla.status(s.name)
        for state in SLA_STATES:
            slice_state.samples.append(({**ids[s.name], "state": state}, int(status == state)))
    target_state = Family(
        "sauron_sla_target_state",
        "gauge",
        "1 for the state of one SLA target of the slice (met, at risk, violated).",
    )
    for s in engine.catalog.slices:
        for target, status in sorted(engine.sla.target_states(s.name).items()):
            for state in SLA_STATES:
                labels = {**ids[s.name], "target": target, "state": state}
                target_state.samples.append((labels, int(status == state)))
    return [slice_state, target_state]


def _energy_families(latest: Snapshot, ids: Mapping[str, Labels]) -> list[Family]:
    node = latest.energy
    assert node is not None
    method = {"method": node.method}
    joules = Family(
        "sauron_energy_joules_total",
        "counter",
        "Energy attributed to the slice since the agent started.",
    )
    watts = Family(
        "sauron_energy_watts", "gauge", "Mean power attributed to the slice over the last interval."
    )
    for kpis in latest.slices.values():
        if kpis.energy is not None:
            joules.samples.append(
                ({**ids[kpis.name], **method}, float(kpis.energy.cumulative_joules))
            )
    for kpis in latest.slices.values():
        if kpis.energy is not None:
            watts.samples.append(({**ids[kpis.name], **method}, float(kpis.energy.watts)))
    by_volume = Family(
        "sauron_energy_by_volume_joules_total",
        "counter",
        "Energy attributed to the slice since the agent started, by its share of the N3 "
        "data volume (the CPU-time figure is sauron_energy_joules_total).",
    )
    for kpis in latest.slices.values():
        if kpis.energy is not None:
            by_volume.samples.append(
                ({**ids[kpis.name], **method}, float(kpis.energy.cumulative_volume_joules))
            )
    node_joules = Family(
        "sauron_node_energy_joules_total",
        "counter",
        "The node's estimated energy since the agent started.",
    )
    node_joules.samples.append(({**method}, float(node.cumulative_joules)))
    node_watts = Family(
        "sauron_node_energy_watts", "gauge", "The node's mean power over the last interval."
    )
    node_watts.samples.append(({**method}, float(node.watts)))
    return [joules, watts, by_volume, node_joules, node_watts]
