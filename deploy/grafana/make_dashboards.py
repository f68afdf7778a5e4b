"""Writes dashboards/sauron-slices.json, the Grafana dashboard of the slices
across every node that publishes to one InfluxDB bucket: the dashboard
page's views, built from the publisher's schema (sauron/export/influx/points.py)
and the KPI table (sauron/abi/kpis.py).
Percentiles come from the histogram buckets summed across nodes, never from
averaged percentiles. Run: python deploy/grafana/make_dashboards.py
(tests/unit/test_grafana.py checks the file is this script's output, and that
every query names only what the publisher writes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grafana_model

from sauron.abi.kpis import DIRECTION_LATENCY, SECURITY_MEASUREMENT, SLICE_LATENCY
from sauron.export.influx.points import SECURITY_EVENT as SECURITY_EVENT_MEASUREMENT

OUT = Path(__file__).resolve().parent / "dashboards" / "sauron-slices.json"
DATASOURCE = {"type": "influxdb", "uid": "sauron-influxdb"}

#: every query starts here: the bucket, the time range, the chosen nodes
BASE = """from(bucket: "${bucket}")
  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)
  |> filter(fn: (r) => r._measurement == "%s")
  |> filter(fn: (r) => r.slice == "${slice}" and contains(value: r.node, set: ${node:json}))"""


def histogram_quantiles(metric: str, by: str, quantiles: tuple[float, ...]) -> list[str]:
    """Percentiles of the buckets summed across nodes, per window: cumulative
    counts by upper bound (le), then histogramQuantile."""
    parts = []
    for q in quantiles:
        parts.append(
            BASE % "sauron_histogram"
            + f"""
  |> filter(fn: (r) => r.metric == "{metric}" and r._field == "count")
  |> group(columns: ["{by}", "le"])
  |> aggregateWindow(every: v.windowPeriod, fn: sum, createEmpty: false)
  |> map(fn: (r) => ({{r with le: float(v: r.le), _value: float(v: r._value)}}))
  |> group(columns: ["{by}", "_time"])
  |> sort(columns: ["le"])
  |> cumulativeSum(columns: ["_value"])
  |> histogramQuantile(quantile: {q}, countColumn: "_value", upperBoundColumn: "le", valueColumn: "_value")
  |> group(columns: ["{by}"])
  |> map(fn: (r) => ({{_time: r._time, _value: r._value, _field: "p{q * 100:g} " + r.{by}}}))"""
        )
    return parts


def panel(title: str, kind: str, queries: list[str], *at: int, **shape: Any) -> dict[str, Any]:
    """A panel of Flux queries (grafana_model.panel)."""
    return grafana_model.panel(
        DATASOURCE, title, kind, [{"query": q} for q in queries], *at, **shape
    )


def slice_row(y: int) -> list[dict[str, Any]]:
    row = {
        "type": "row",
        "title": "Slice ${slice}",
        "repeat": "slice",
        "collapsed": False,
        "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
        "panels": [],
    }
    y += 1
    status = (
        BASE % "sauron_slice"
        + """
  |> filter(fn: (r) => r._field == "sla_status")
  |> group()
  |> last()"""
    )
    open_violations = (
        BASE % "sauron_slice"
        + """
  |> filter(fn: (r) => r._field == "sla_open_violations")
  |> aggregateWindow(every: v.windowPeriod, fn: max, createEmpty: false)
  |> group(columns: ["_field"])
  |> last()"""
    )
    throughput = (
        BASE % "sauron_traffic"
        + """
  |> filter(fn: (r) => r._field == "bytes_out")
  |> group(columns: ["direction"])
  |> aggregateWindow(every: v.windowPeriod, fn: sum, createEmpty: false)
  |> map(fn: (r) => ({r with _value: float(v: r._value) * 8.0 / float(v: uint(v: v.windowPeriod)) * 1000000000.0}))"""
    )
    loss = (
        BASE % "sauron_loss"
        + """
  |> filter(fn: (r) => r._field == "lost" or r._field == "measured")
  |> group(columns: ["source", "direction", "_field"])
  |> aggregateWindow(every: v.windowPeriod, fn: sum, createEmpty: false)
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> filter(fn: (r) => r.measured > 0)
  |> map(fn: (r) => ({_time: r._time, _value: float(v: r.lost) / float(v: r.measured), _field: r.source + " " + r.direction}))"""
    )
    energy = (
        BASE % "sauron_energy"
        + """
  |> filter(fn: (r) => r._field == "joules" or r._field == "bytes")
  |> group(columns: ["_field"])
  |> aggregateWindow(every: v.windowPeriod, fn: sum, createEmpty: false)
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> filter(fn: (r) => r.bytes > 0)
  |> map(fn: (r) => ({_time: r._time, _value: r.joules / float(v: r.bytes) * 1000000000.0, _field: "J/GB"}))"""
    )
    watts = (
        BASE % "sauron_energy"
        + """
  |> filter(fn: (r) => r._field == "joules")
  |> group()
  |> aggregateWindow(every: v.windowPeriod, fn: sum, createEmpty: false)
  |> map(fn: (r) => ({r with _value: r._value / float(v: uint(v: v.windowPeriod)) * 1000000000.0, _field: "W"}))"""
    )
    active = (
        BASE % "sauron_slice"
        + """
  |> filter(fn: (r) => r._field == "active_ues" or r._field == "active_teids")
  |> group(columns: ["_time", "_field"])
  |> sum()
  |> group(columns: ["_field"])
  |> aggregateWindow(every: v.windowPeriod, fn: max, createEmpty: false)"""
    )
    security = (
        BASE % SECURITY_MEASUREMENT
        + """
  |> group(columns: ["_field"])
  |> aggregateWindow(every: v.windowPeriod, fn: sum, createEmpty: false)"""
    )
    per_direction = " and ".join(k.title.capitalize() for k in DIRECTION_LATENCY)
    per_slice = " and ".join(k.title for k in SLICE_LATENCY)
    heat = (
        BASE % "sauron_histogram"
        + f"""
  |> filter(fn: (r) => r.metric == "{DIRECTION_LATENCY[0].name}" and r.direction == "uplink" and r._field == "count")
  |> group(columns: ["le"])
  |> aggregateWindow(every: v.windowPeriod, fn: sum, createEmpty: false)
  |> map(fn: (r) => ({{_time: r._time, _value: r._value, _field: r.le}}))"""
    )
    panels = [
        panel(
            "SLA status",
            "stat",
            [status, open_violations],
            0,
            y,
            w=4,
            description="The status of the latest interval, as the agents judged it, "
            "and the open violations (most of any node).",
            options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "/.*/"}},
        ),
        panel("Throughput", "timeseries", [throughput], 4, y, unit="bps"),
        panel(
            f"{per_direction} latency percentiles (buckets summed across nodes)",
            "timeseries",
            [
                query
                for kpi in DIRECTION_LATENCY
                for query in histogram_quantiles(kpi.name, "direction", (0.5, 0.99))
            ],
            12,
            y,
            w=12,
            unit="ms",
        ),
        panel(
            f"{DIRECTION_LATENCY[0].title.capitalize()} latency histogram, uplink",
            "heatmap",
            [heat],
            0,
            y + 8,
            w=12,
            options={"calculate": False, "yAxis": {"unit": "ms"}, "cellGap": 0},
            description="Per-interval bucket counts summed across nodes; rows are the "
            "buckets' upper bounds (le).",
        ),
        panel(
            f"{per_slice} p99 (buckets summed across nodes)",
            "timeseries",
            [
                query
                for kpi in SLICE_LATENCY
                for query in histogram_quantiles(kpi.name, "metric", (0.99,))
            ],
            12,
            y + 8,
            w=12,
            unit="ms",
        ),
        panel(
            "Loss by source (lost / measured, summed across nodes)",
            "timeseries",
            [loss],
            0,
            y + 16,
            unit="percentunit",
        ),
        panel("Energy", "timeseries", [watts, energy], 8, y + 16, unit="none"),
        panel("Active UEs and TEIDs", "timeseries", [active], 16, y + 16),
        panel(
            "Security checks failed (frames, summed across nodes)",
            "timeseries",
            [security],
            0,
            y + 24,
            w=24,
            description="Uplink G-PDUs that failed each security check per interval "
            "(docs/security.md).",
        ),
    ]
    return [row, *panels]


def violations(y: int) -> dict[str, Any]:
    query = """from(bucket: "${bucket}")
  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)
  |> filter(fn: (r) => r._measurement == "sauron_sla_event")
  |> filter(fn: (r) => contains(value: r.slice, set: ${slice:json}) and contains(value: r.node, set: ${node:json}))
  |> pivot(rowKey: ["_time", "node", "slice", "target", "change"], columnKey: ["_field"], valueColumn: "_value")
  |> group()
  |> keep(columns: ["_time", "node", "slice", "target", "change", "end_reason", "limit", "worst", "intervals", "bad_intervals"])
  |> sort(columns: ["_time"], desc: true)"""
    return panel("SLA violations opened and closed", "table", [query], 0, y, w=24, h=9)


def diagnoses(y: int) -> dict[str, Any]:
    """Why a slice was late or lossy: each diagnosis's one sentence, newest first."""
    query = """from(bucket: "${bucket}")
  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)
  |> filter(fn: (r) => r._measurement == "sauron_diagnosis" and r._field == "summary")
  |> filter(fn: (r) => contains(value: r.slice, set: ${slice:json}) and contains(value: r.node, set: ${node:json}))
  |> group()
  |> keep(columns: ["_time", "node", "slice", "target", "_value"])
  |> rename(columns: {_value: "diagnosis"})
  |> sort(columns: ["_time"], desc: true)"""
    return panel("Diagnoses: why a slice was late or lossy", "table", [query], 0, y, w=24, h=9)


def detections(y: int) -> dict[str, Any]:
    """The TEID scans and spoofing UEs, each as it stood last, newest first."""
    query = f"""from(bucket: "${{bucket}}")
  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)
  |> filter(fn: (r) => r._measurement == "{SECURITY_EVENT_MEASUREMENT}")
  |> filter(fn: (r) => contains(value: r.slice, set: ${{slice:json}}) and contains(value: r.node, set: ${{node:json}}))
  |> pivot(rowKey: ["_time", "node", "slice", "kind", "event"], columnKey: ["_field"], valueColumn: "_value")
  |> group()
  |> keep(columns: ["_time", "node", "slice", "kind", "peer", "count", "distinct", "teids", "last_seen", "ongoing"])
  |> sort(columns: ["_time"], desc: true)"""
    return panel("Security detections: TEID scans, spoofing UEs", "table", [query], 0, y, w=24, h=9)


def variable(name: str, label: str, tag: str, measurement: str) -> dict[str, Any]:
    """The values of a tag of a measurement in the bucket."""
    query = f"""import "influxdata/influxdb/schema"
schema.tagValues(bucket: "${{bucket}}", tag: "{tag}", predicate: (r) => r._measurement == "{measurement}", start: -7d)"""
    return grafana_model.variable(DATASOURCE, name, label, query, query)


def dashboard() -> dict[str, Any]:
    bucket = {"name": "bucket", "label": "Bucket", "type": "constant", "query": "sauron", "hide": 0}
    return grafana_model.dashboard(
        "sauron-slices",
        "Sauron: slice SLAs across nodes",
        "Per-slice KPIs of every node publishing to the bucket; built from "
        "the schema in sauron/export/influx/points.py.",
        ["sauron", "5g", "slices"],
        [
            bucket,
            variable("node", "Node", "node", "sauron_slice"),
            variable("slice", "Slice", "slice", "sauron_slice"),
        ],
        [*slice_row(0), violations(34), diagnoses(43), detections(52)],
    )


def render() -> str:
    return grafana_model.render(dashboard())


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
