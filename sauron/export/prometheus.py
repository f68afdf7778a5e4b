"""/metrics in the Prometheus text format (version 0.0.4): the engine's
families (sauron.export.families: the data plane's monotonic counters per
slice, attach point and direction, GTP-U message kinds, anomalies by reason,
loss counters, latency as Prometheus histograms, and per-slice gauges from
the latest interval), the build and the process, and the families of the
liveness, of the security detections and of the exporters that push
(InfluxDB, OTLP)."""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sauron import __version__
from sauron.abi.histogram import LATENCY, Histogram
from sauron.export import open5gs_names, process_metrics
from sauron.export.delivery.lossless import STATES, LosslessExporter
from sauron.export.exporter import ExporterHealth
from sauron.export.families import (
    NS_PER_S,
    detection_family,
    engine_families,
    slice_labels,
)
from sauron.export.families import Family as MetricFamily
from sauron.export.otlp.stats import NAME as OTLP_NAME
from sauron.export.otlp.stats import STATES as OTLP_STATES
from sauron.export.otlp.stats import OtlpStats
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


def _histogram_lines(name: str, labels: Mapping[str, object], h: Histogram) -> list[str]:
    lines = [f"{name}_bucket{_labels(**labels, le=le)} {n}" for le, n in _cumulative(h)]
    lines.append(f"{name}_sum{_labels(**labels)} {h.total / NS_PER_S:.9g}")
    lines.append(f"{name}_count{_labels(**labels)} {sum(h.buckets)}")
    return lines


def render(
    engine: KpiEngine,
    publisher: LosslessExporter[Any] | None = None,
    failures: Mapping[str, int] | None = None,
) -> str:
    """The exposition; `failures`: the tick's and each listener's failures
    since start (see liveness). The live stream's families are the
    service's (StreamHub.exposition)."""
    return render_engine(engine) + render_runtime(publisher, failures)


def _family_lines(fam: MetricFamily) -> list[str]:
    out = [f"# HELP {fam.name} {fam.help}", f"# TYPE {fam.name} {fam.kind}"]
    for labels, value in fam.samples:
        out.append(f"{fam.name}{_labels(**labels)} {_number(value)}")
    for labels, h in fam.histograms:
        out += _histogram_lines(fam.name, labels, h)
    return out


def render_engine(engine: KpiEngine, open5gs: bool = False) -> str:
    """The families of what the engine measured (sauron.export.families):
    they move only when it ticks; with `open5gs`, Open5GS's UPF names too
    (sauron.export.open5gs_names)."""
    out: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")

    for fam in engine_families(engine):
        out += _family_lines(fam)
    if open5gs:
        catalog = engine.catalog
        slices = [(0, catalog.name_of(0)), *((s.id, s.name) for s in catalog.slices)]
        labels_text = {n: _labels(**labels) for n, labels in slice_labels(catalog).items()}
        out += open5gs_names.lines(engine.counters, slices, labels_text)
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
    otlp: OtlpStats | None = None,
    attached: Sequence[tuple[str, str, bool]] = (),
    families: Sequence[MetricFamily] = (),
) -> str:
    """The families that move between ticks: the liveness' failures,
    `families` (the security detections), those of the exporters that push
    (the InfluxDB publisher, `publisher` or among `pushing`, and the remote
    write) and the OTLP exporter's."""
    out: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")

    if failures is not None:
        _failure_lines(failures, out, family)
    for fam in families:
        out += _family_lines(fam)
    for exporter in [publisher] if publisher is not None else pushing:
        _delivery_lines(exporter, out, family)
    if otlp is not None:
        _otlp_lines(otlp, out, family)
    if attached:
        family(
            "sauron_attached",
            "gauge",
            "1 while the agent's program is on the interface's hook; 0 once the kernel let go "
            "of it (the interface was deleted or made anew: restart the agent).",
        )
        for interface, hook, on in attached:
            out.append(f"sauron_attached{_labels(interface=interface, hook=hook)} {int(on)}")
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


def _number(value: float) -> str:
    """A count as it is, a measure with six decimals."""
    return f"{value:.6f}" if isinstance(value, float) else str(value)


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


def _otlp_lines(s: OtlpStats, out: list[str], family: Family) -> None:
    family(
        "sauron_otlp_exports_total",
        "counter",
        "Intervals sent to the OTLP endpoint, by result (ok; failed after the exporter's retries).",
    )
    out.append(f"sauron_otlp_exports_total{_labels(result='ok')} {s.exports_ok}")
    out.append(f"sauron_otlp_exports_total{_labels(result='failed')} {s.exports_failed}")
    family(
        "sauron_otlp_intervals_skipped_total",
        "counter",
        "Intervals replaced by a later one while an export was under way.",
    )
    out.append(f"sauron_otlp_intervals_skipped_total {s.intervals_skipped}")
    family(
        "sauron_otlp_last_success_timestamp_seconds",
        "gauge",
        "Unix time of the last export the endpoint took (0: none yet).",
    )
    out.append(f"sauron_otlp_last_success_timestamp_seconds {s.last_success or 0}")
    family("sauron_otlp_state", "gauge", "1 for the OTLP exporter's current state.")
    for state in OTLP_STATES:
        out.append(f"sauron_otlp_state{_labels(state=state)} {int(s.state == state)}")


class PrometheusExporter:
    """The exposition as an exporter (sauron.export.exporter): Prometheus
    asks, so there is nothing to start, stop or do per snapshot; /metrics
    renders from the engine's latest state, with `failures` (the liveness'
    counts), the families of the exporters that push among `exporters`
    (the InfluxDB publisher, the remote write) and the OTLP exporter's."""

    name = "prometheus"

    def __init__(
        self,
        engine: KpiEngine,
        failures: Callable[[], Mapping[str, int]] | None = None,
        exporters: Sequence[object] = (),
        open5gs_names: bool = False,
    ) -> None:
        self.engine = engine
        #: (interface, hook, attached) of the agent's links, read at each
        #: scrape (sauron.agent.datapath.AgentDataPath.attached)
        self.attached: Callable[[], Sequence[tuple[str, str, bool]]] | None = None
        #: the families under Open5GS's UPF names too (sauron.export.open5gs_names)
        self.open5gs_names = open5gs_names
        #: the security detections opened, by (slice id, detection kind), read
        #: at each scrape (sauron.agent.securing.Securing.opened); None: the
        #: checks are off. Not among the engine's families: the detector
        #: hears the snapshot after the engine's generation moved on
        self.detections: Callable[[], Mapping[tuple[int, str], int]] | None = None
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
            text = render_engine(self.engine, self.open5gs_names)
            # a tick that landed meanwhile makes it the next tick's text
            if generation == self.engine.generation:
                self._engine_text = (text, generation)
        pushing = [
            e
            for e in self.exporters
            if isinstance(e, LosslessExporter) and e.name in DELIVERY_FAMILIES
        ]
        otlp = next(
            (
                stats
                for e in self.exporters
                if getattr(e, "name", None) == OTLP_NAME
                and isinstance(stats := getattr(e, "stats", None), OtlpStats)
            ),
            None,
        )
        failures = None if self.failures is None else self.failures()
        attached = () if self.attached is None else self.attached()
        families = []
        if self.detections is not None:
            families.append(detection_family(self.engine.catalog, self.detections()))
        return text, render_runtime(None, failures, pushing, otlp, attached, families)
