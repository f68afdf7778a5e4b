"""/metrics in the Prometheus text format (version 0.0.4): the data plane's
monotonic counters per slice, attach point and direction, GTP-U message
kinds, anomalies by reason, loss counters, latency as Prometheus histograms,
and per-slice gauges from the latest interval."""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sauron import __version__
from sauron.abi import layout, points
from sauron.abi.histogram import LATENCY, Histogram
from sauron.abi.kpis import LATENCY_KPIS
from sauron.catalog import Catalog
from sauron.export import process_metrics
from sauron.export.delivery.lossless import STATES, LosslessExporter
from sauron.export.exporter import ExporterHealth
from sauron.kpi.engine import KpiEngine
from sauron.kpi.liveness import TICK
from sauron.kpi.records import Snapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _labels(**labels: object) -> str:
    def esc(v: object) -> str:
        return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in labels.items()) + "}"


#: Prometheus `le` bounds: every power of two of the latency geometry. Its
#: buckets split exactly there, so each cumulative count is exact (a value
#: of exactly 2^k ns counts above its bound, not at it: [lower, upper) buckets)
LE_SHIFTS = range(LATENCY.min_shift, LATENCY.max_shift + 1)
NS_PER_S = 1e9
LOSS_COUNTERS = (
    ("sauron_transit_matched_total", "transit_matched", "Sampled packets seen leaving the UPF."),
    ("sauron_sequence_received_total", "seq_received", "G-PDUs with a GTP-U sequence number."),
    ("sauron_sequence_lost_total", "seq_lost", "GTP-U sequence numbers never received."),
    ("sauron_sequence_reordered_total", "seq_reordered", "G-PDUs that arrived late."),
    ("sauron_tcp_data_segments_total", "tcp_data_segments", "Inner TCP segments with data."),
    ("sauron_tcp_retransmissions_total", "tcp_retransmissions", "Inner TCP segments sent again."),
)


def _cumulative(h: Histogram) -> list[tuple[str, int]]:
    """(le, cumulative count) pairs, +Inf last."""
    out, seen, index = [], 0, 0
    for shift in LE_SHIFTS:
        first_above = 1 + (shift - LATENCY.min_shift) * LATENCY.sub_buckets
        seen += sum(h.buckets[index:first_above])
        index = first_above
        out.append((f"{(1 << shift) / NS_PER_S:.9g}", seen))
    out.append(("+Inf", seen + sum(h.buckets[index:])))
    return out


def _histogram_lines(name: str, labels: dict[str, object], h: Histogram) -> list[str]:
    lines = [f"{name}_bucket{_labels(**labels, le=le)} {n}" for le, n in _cumulative(h)]
    lines.append(f"{name}_sum{_labels(**labels)} {h.total / NS_PER_S:.9g}")
    lines.append(f"{name}_count{_labels(**labels)} {sum(h.buckets)}")
    return lines


def slice_labels(catalog: Catalog) -> dict[str, dict[str, str]]:
    """The one label set of a slice on every family: its name, its S-NSSAI
    as 3GPP writes it (SST-SD, TS 23.003) and both parts; empty for
    unclassified, which has none."""
    ids = {catalog.name_of(0): {"slice": catalog.name_of(0), "snssai": "", "sst": "", "sd": ""}}
    for s in catalog.slices:
        snssai = s.spec.snssai
        ids[s.name] = {
            "slice": s.name,
            "snssai": str(snssai),
            "sst": str(snssai.sst),
            "sd": "" if snssai.sd is None else f"{snssai.sd:06x}",
        }
    return ids


def render(
    engine: KpiEngine,
    publisher: LosslessExporter[Any] | None = None,
    failures: Mapping[str, int] | None = None,
) -> str:
    """The exposition; `failures`: the tick's and each listener's failures
    since start (see liveness). The live stream's families are the
    service's (StreamHub.exposition)."""
    return render_engine(engine) + render_runtime(publisher, failures)


def render_engine(engine: KpiEngine) -> str:
    """The families of what the engine measured: they move only when it
    ticks."""
    c = engine.counters
    catalog = engine.catalog
    out: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")

    ids = slice_labels(catalog)
    slices = [(0, catalog.name_of(0)), *((s.id, s.name) for s in catalog.slices)]
    stats = [
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
    ]
    for name, field, help_text in stats:
        family(name, "counter", help_text)
        for sid, sname in slices:
            for point, pname in layout.POINT_NAMES.items():
                for d, dname in layout.DIRECTION_NAMES.items():
                    value = getattr(c.slice(point, sid, d), field)
                    out.append(
                        f"{name}{_labels(**ids[sname], point=pname, direction=dname)} {value}"
                    )
    family(
        "sauron_gtpu_messages_total", "counter", "GTP-U messages per slice, attach point and kind."
    )
    for sid, sname in slices:
        for point in (p.id for p in points.GTPU_POINTS):
            for kind, kname in layout.MSG_KIND_NAMES.items():
                total = sum(int(c.slice(point, sid, d).msg[kind]) for d in layout.DIRECTION_NAMES)
                out.append(
                    f"sauron_gtpu_messages_total{_labels(**ids[sname], point=layout.POINT_NAMES[point], kind=kname)} {total}"
                )
    family(
        "sauron_anomalies_total",
        "counter",
        "Frames per anomaly reason (the first met) and attach point.",
    )
    for point, pname in layout.POINT_NAMES.items():
        for ev, reason in layout.ANOMALY_NAMES.items():
            out.append(
                f"sauron_anomalies_total{_labels(point=pname, reason=reason)} {c.event(point, ev)}"
            )
    zero = layout.MeasureStats()
    directed = [
        (sid, sname, d, dname)
        for sid, sname in slices
        for d, dname in layout.DIRECTION_NAMES.items()
    ]
    family(
        "sauron_transit_lost_total",
        "counter",
        "Sampled packets that entered the UPF and never left (stamp expired).",
    )
    for sid, sname, d, dname in directed:
        lost = c.transit_expired.get((sid, d), 0)
        out.append(f"sauron_transit_lost_total{_labels(**ids[sname], direction=dname)} {lost}")
    for name, field, help_text in LOSS_COUNTERS:
        family(name, "counter", help_text + " Per slice and direction.")
        for sid, sname, d, dname in directed:
            value = int(getattr(c.measure.get((sid, d), zero), field))
            out.append(f"{name}{_labels(**ids[sname], direction=dname)} {value}")
    for kpi in LATENCY_KPIS:
        per = "per slice and direction" if kpi.per_direction else "per slice"
        family(kpi.prometheus, "histogram", f"{kpi.help[0].upper()}{kpi.help[1:]}; {per}.")
        for sid, sname, d, dname in directed:
            if dname not in kpi.directions:
                continue
            h = c.latency.get((kpi.metric, sid, d)) or Histogram(kpi.geometry)
            labels: dict[str, object] = {**ids[sname]}
            if kpi.per_direction:
                labels["direction"] = dname
            out += _histogram_lines(kpi.prometheus, labels, h)
    family(
        "sauron_gtpu_echo_rtt_seconds",
        "histogram",
        "GTP-U echo round trips per peer; initiator local: this node asked (path RTT), peer: the peer asked (our answer time).",
    )
    for (peer, initiator), h in sorted(c.peers.items()):
        labels = {"peer": peer, "initiator": "local" if initiator == layout.ECHO_LOCAL else "peer"}
        out += _histogram_lines("sauron_gtpu_echo_rtt_seconds", labels, h)
    latest = engine.history.latest()
    if latest is not None:
        family("sauron_active_teids", "gauge", "TEIDs that carried traffic in the last interval.")
        for kpis in latest.slices.values():
            out.append(f"sauron_active_teids{_labels(**ids[kpis.name])} {kpis.active_teids}")
        family(
            "sauron_active_ues", "gauge", "UE addresses that carried traffic in the last interval."
        )
        for kpis in latest.slices.values():
            out.append(f"sauron_active_ues{_labels(**ids[kpis.name])} {kpis.active_ues}")
        family("sauron_throughput_mbps", "gauge", "Delivered throughput in the last interval.")
        for kpis in latest.slices.values():
            for dname in ("uplink", "downlink"):
                out.append(
                    f"sauron_throughput_mbps{_labels(**ids[kpis.name], direction=dname)} {getattr(kpis, dname).mbps:.6f}"
                )
    family("sauron_sla_violated", "gauge", "1 while a violation of the slice's SLA is open.")
    for s in catalog.slices:
        out.append(
            f"sauron_sla_violated{_labels(**ids[s.name])} {int(engine.sla.status(s.name) == 'violated')}"
        )
    _sla_state_lines(engine, ids, out, family)
    if latest is not None and latest.energy is not None:
        _energy_lines(latest, ids, out, family)
    family("sauron_build_info", "gauge", "The agent's version and Python, always 1.")
    out.append(
        f"sauron_build_info{_labels(version=__version__, python=platform.python_version())} 1"
    )
    # as of the tick (rendered once per tick): a scrape every 15 s reads them
    # no more than a second old
    # with no descriptor left to read /proc with, the rest still serves
    with contextlib.suppress(OSError):
        out += process_metrics.lines(process_metrics.read())
    return "\n".join(out) + "\n"


def render_runtime(
    publisher: LosslessExporter[Any] | None = None,
    failures: Mapping[str, int] | None = None,
    pushing: Sequence[LosslessExporter[Any]] = (),
) -> str:
    """The families that move between ticks: the liveness' failures and
    those of the exporters that push (the InfluxDB publisher, `publisher`
    or among `pushing`, and the remote write)."""
    out: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")

    if failures is not None:
        _failure_lines(failures, out, family)
    for exporter in [publisher] if publisher is not None else pushing:
        _delivery_lines(exporter, out, family)
    return "".join(line + "\n" for line in out)


def _failure_lines(failures: Mapping[str, int], out: list[str], family: Family) -> None:
    family(
        "sauron_tick_failures_total",
        "counter",
        "Intervals whose reading of the maps failed (tried again the next interval).",
    )
    out.append(f"sauron_tick_failures_total {failures.get(TICK, 0)}")
    family(
        "sauron_listener_failures_total",
        "counter",
        "Snapshots a listener (stream, publisher) failed to take, by listener.",
    )
    for name in sorted(n for n in failures if n != TICK):
        out.append(f"sauron_listener_failures_total{_labels(listener=name)} {failures[name]}")


Family = Callable[[str, str, str], None]
SLA_STATES = ("met", "at risk", "violated")


def _sla_state_lines(
    engine: KpiEngine, ids: Mapping[str, Mapping[str, str]], out: list[str], family: Family
) -> None:
    """Each slice's SLA state and each of its targets', one series per
    state (1 for the current one), as kube-state-metrics writes phases: an
    alert can ask for `state="at risk"` as well as `violated`."""
    family(
        "sauron_sla_state",
        "gauge",
        "1 for the slice's SLA state (met, at risk, violated; none while unmeasured).",
    )
    for s in engine.catalog.slices:
        status = engine.sla.status(s.name)
        for state in SLA_STATES:
            out.append(
                f"sauron_sla_state{_labels(**ids[s.name], state=state)} {int(status == state)}"
            )
    family(
        "sauron_sla_target_state",
        "gauge",
        "1 for the state of one SLA target of the slice (met, at risk, violated).",
    )
    for s in engine.catalog.slices:
        for target, status in sorted(engine.sla.target_states(s.name).items()):
            for state in SLA_STATES:
                labels = _labels(**ids[s.name], target=target, state=state)
                out.append(f"sauron_sla_target_state{labels} {int(status == state)}")


def _energy_lines(
    latest: Snapshot, ids: Mapping[str, Mapping[str, str]], out: list[str], family: Family
) -> None:
    """Appends to `out`, where `family` writes each family's HELP and TYPE,
    so every sample follows its own family's header."""
    node = latest.energy
    assert node is not None
    method = {"method": node.method}
    family(
        "sauron_energy_joules_total",
        "counter",
        "Energy attributed to the slice since the agent started.",
    )
    for kpis in latest.slices.values():
        if kpis.energy is not None:
            labels = _labels(**ids[kpis.name], **method)
            out.append(f"sauron_energy_joules_total{labels} {kpis.energy.cumulative_joules:.6f}")
    family(
        "sauron_energy_watts", "gauge", "Mean power attributed to the slice over the last interval."
    )
    for kpis in latest.slices.values():
        if kpis.energy is not None:
            out.append(
                f"sauron_energy_watts{_labels(**ids[kpis.name], **method)} {kpis.energy.watts:.6f}"
            )
    family(
        "sauron_node_energy_joules_total",
        "counter",
        "The node's estimated energy since the agent started.",
    )
    out.append(f"sauron_node_energy_joules_total{_labels(**method)} {node.cumulative_joules:.6f}")
    family("sauron_node_energy_watts", "gauge", "The node's mean power over the last interval.")
    out.append(f"sauron_node_energy_watts{_labels(**method)} {node.watts:.6f}")


#: the families of each pushing exporter, by its name: their prefix, and
#: what a line is, the server it writes to and the exporter (in the HELP texts)
DELIVERY_FAMILIES = {
    "publisher": ("sauron_publisher", "points", "The InfluxDB server", "publisher"),
    "remote_write": (
        "sauron_remote_write",
        "samples",
        "The remote-write receiver",
        "remote-write exporter",
    ),
}


def _delivery_lines(exporter: LosslessExporter[Any], out: list[str], family: Family) -> None:
    """The state and counts of a pushing exporter (the InfluxDB publisher's
    sauron_publisher_*, the remote write's sauron_remote_write_*)."""
    prefix, unit, server, noun = DELIVERY_FAMILIES[exporter.name]
    Unit = unit.capitalize()
    s = exporter.stats

    def one(name: str, kind: str, help_text: str, value: float) -> None:
        family(f"{prefix}_{name}", kind, help_text)
        out.append(f"{prefix}_{name} {value}")

    one(
        f"{unit}_written_total",
        "counter",
        f"{Unit} {server[0].lower()}{server[1:]} accepted (replays included).",
        s.points_written,
    )
    one(f"{unit}_replayed_total", "counter", f"{Unit} written from the spool.", s.points_replayed)
    one(f"{unit}_spooled_total", "counter", f"{Unit} put in the disk spool.", s.points_spooled)
    one(
        "retries_total",
        "counter",
        "Write attempts that failed and will be tried again.",
        s.retries,
    )
    family(
        f"{prefix}_{unit}_dropped_total",
        "counter",
        f"{Unit} thrown away, by reason (spool_full, refused_<status>).",
    )
    for reason in ("spool_full", *sorted(r for r in s.points_dropped if r != "spool_full")):
        out.append(
            f"{prefix}_{unit}_dropped_total{_labels(reason=reason)} {s.points_dropped.get(reason, 0)}"
        )
    one(f"spool_{unit}", "gauge", f"{Unit} waiting in the disk spool.", exporter.spool.points)
    one("spool_bytes", "gauge", "Bytes in the disk spool.", exporter.spool.size)
    one(
        "last_success_timestamp_seconds",
        "gauge",
        "Unix time of the last accepted write (0: none yet).",
        s.last_success or 0,
    )
    family(f"{prefix}_state", "gauge", f"1 for the {noun}'s current state.")
    for state in STATES:
        out.append(f"{prefix}_state{_labels(state=state)} {int(s.state == state)}")


class PrometheusExporter:
    """The exposition as an exporter (sauron.export.exporter): Prometheus
    asks, so there is nothing to start, stop or do per snapshot; /metrics
    renders from the engine's latest state, with `failures` (the liveness'
    counts) and the families of the exporters that push among `exporters`
    (the InfluxDB publisher, the remote write)."""

    name = "prometheus"

    def __init__(
        self,
        engine: KpiEngine,
        failures: Callable[[], Mapping[str, int]] | None = None,
        exporters: Sequence[object] = (),
    ) -> None:
        self.engine = engine
        self.failures = failures
        self.exporters = exporters
        #: the engine's families, rendered once per tick
        self._engine_text = ("", -1)

    async def start(self, engine: KpiEngine) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Nothing to stop."""

    def on_snapshot(self, snapshot: Snapshot) -> None:
        """Nothing to do: the exposition reads the engine when asked."""

    def health(self) -> ExporterHealth:
        return ExporterHealth(self.name)

    def render(self) -> str:
        return "".join(self.parts())

    def parts(self) -> tuple[str, str]:
        """The engine's families (one string per tick, rendered once), then
        the liveness' and the publisher's."""
        text, generation = self._engine_text
        if generation != self.engine.generation:
            generation = self.engine.generation
            text = render_engine(self.engine)
            # a tick that landed meanwhile makes it the next tick's text
            if generation == self.engine.generation:
                self._engine_text = (text, generation)
        pushing = [
            e
            for e in self.exporters
            if isinstance(e, LosslessExporter) and e.name in DELIVERY_FAMILIES
        ]
        failures = None if self.failures is None else self.failures()
        return text, render_runtime(None, failures, pushing)
