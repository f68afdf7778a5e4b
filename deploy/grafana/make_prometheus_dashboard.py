"""Writes prometheus/sauron-slices.json, the Grafana dashboard
of the slices across every agent one Prometheus scrapes: the same views as
the InfluxDB one (make_dashboards.py), in PromQL over the agents' /metrics,
built from the KPI table (sauron/abi/kpis.py: each latency KPI's family)
and the exposition's families (sauron/export/prometheus.py). Percentiles
come from the histogram buckets summed across agents by `le`, never from
averaged percentiles. Run: python deploy/grafana/make_prometheus_dashboard.py
(tests/unit/test_grafana_prometheus.py checks the file is this script's
output, that promtool parses every query, and that every metric a query
names is one the agent exposes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grafana_model

from sauron.abi.kpis import DIRECTION_LATENCY, SECURITY_FAMILY, SLICE_LATENCY

OUT = Path(__file__).resolve().parent / "prometheus" / "sauron-slices.json"
DATASOURCE = {"type": "prometheus", "uid": "sauron-prometheus"}
#: every query's selection: the chosen agents and the row's slice
PICK = 'instance=~"$instance", slice="$slice"'


def quantiles(family: str, by: str, qs: tuple[float, ...]) -> list[tuple[str, str]]:
    """(query, legend) per quantile: the buckets' rates summed across
    agents by upper bound, then histogram_quantile."""
    return [
        (
            f"histogram_quantile({q}, sum by (le, {by}) "
            f"(rate({family}_bucket{{{PICK}}}[$__rate_interval])))",
            f"p{q * 100:g} {{{{{by}}}}}",
        )
        for q in qs
    ]


def panel(
    title: str, kind: str, queries: list[tuple[str, str]], *at: int, **shape: Any
) -> dict[str, Any]:
    """A panel of (PromQL, legend) queries (grafana_model.panel)."""
    targets = [{"expr": expr, "legendFormat": legend} for expr, legend in queries]
    return grafana_model.panel(DATASOURCE, title, kind, targets, *at, **shape)


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
    per_direction = " and ".join(k.title.capitalize() for k in DIRECTION_LATENCY)
    per_slice = " and ".join(k.title for k in SLICE_LATENCY)
    first = DIRECTION_LATENCY[0]
    panels = [
        panel(
            "SLA state (agents in it)",
            "stat",
            [(f"sum by (state) (sauron_sla_state{{{PICK}}})", "{{state}}")],
            0,
            y,
            w=4,
            description="How many of the chosen agents judge the slice met, at risk or "
            "violated in their latest interval.",
            options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": ""}},
        ),
        panel(
            "Delivered throughput",
            "timeseries",
            [
                (
                    "8 * sum by (direction) (rate(sauron_inner_bytes_total"
                    f'{{{PICK}, point=~"n6_egress|n3_egress"}}[$__rate_interval]))',
                    "{{direction}}",
                )
            ],
            4,
            y,
            unit="bps",
            description="Inner IP bytes leaving the UPF: uplink at N6, downlink at N3.",
        ),
        panel(
            f"{per_direction} latency percentiles (buckets summed across agents)",
            "timeseries",
            [
                query
                for kpi in DIRECTION_LATENCY
                for query in quantiles(kpi.prometheus, "direction", (0.5, 0.99))
            ],
            12,
            y,
            w=12,
            unit="s",
        ),
        panel(
            f"{first.title.capitalize()} latency histogram, uplink",
            "heatmap",
            [
                (
                    f"sum by (le) (increase({first.prometheus}_bucket"
                    f'{{{PICK}, direction="uplink"}}[$__rate_interval]))',
                    "{{le}}",
                )
            ],
            0,
            y + 8,
            w=12,
            options={"calculate": False, "yAxis": {"unit": "s"}, "cellGap": 0},
            description="Bucket counts per step summed across agents; rows are the "
            "buckets' upper bounds (le, powers of two).",
            targets_format="heatmap",
        ),
        panel(
            f"{per_slice} p99 (buckets summed across agents)",
            "timeseries",
            [
                (query, f"{kpi.name} p99")
                for kpi in SLICE_LATENCY
                for query, _ in quantiles(kpi.prometheus, "slice", (0.99,))
            ],
            12,
            y + 8,
            w=12,
            unit="s",
        ),
        panel(
            "Loss (lost ÷ sent, summed across agents)",
            "timeseries",
            [
                (
                    f"sum by (direction) (rate(sauron_transit_lost_total{{{PICK}}}"
                    "[$__rate_interval])) / sum by (direction) "
                    f"(rate(sauron_transit_matched_total{{{PICK}}}[$__rate_interval]) "
                    f"+ rate(sauron_transit_lost_total{{{PICK}}}[$__rate_interval]))",
                    "transit {{direction}}",
                ),
                (
                    f"sum by (direction) (rate(sauron_sequence_lost_total{{{PICK}}}"
                    "[$__rate_interval])) / sum by (direction) "
                    f"(rate(sauron_sequence_received_total{{{PICK}}}[$__rate_interval]) "
                    f"+ rate(sauron_sequence_lost_total{{{PICK}}}[$__rate_interval]))",
                    "GTP-U sequence {{direction}}",
                ),
            ],
            0,
            y + 16,
            unit="percentunit",
        ),
        panel(
            "Energy",
            "timeseries",
            [
                (f"sum(sauron_energy_watts{{{PICK}}})", "W"),
                (
                    f"1e9 * sum(rate(sauron_energy_joules_total{{{PICK}}}[$__rate_interval])) "
                    f"/ sum(rate(sauron_inner_bytes_total{{{PICK}, "
                    'point=~"n6_egress|n3_egress"}[$__rate_interval]))',
                    "J/GB",
                ),
            ],
            8,
            y + 16,
        ),
        panel(
            "Active UEs and TEIDs",
            "timeseries",
            [
                (f"sum(sauron_active_ues{{{PICK}}})", "UEs"),
                (f"sum(sauron_active_teids{{{PICK}}})", "TEIDs"),
            ],
            16,
            y + 16,
        ),
        panel(
            "Security checks failed (frames/s)",
            "timeseries",
            [
                (
                    f"sum by (kind) (rate({SECURITY_FAMILY}{{{PICK}}}[$__rate_interval]))",
                    "{{kind}}",
                )
            ],
            0,
            y + 24,
            w=12,
            description="Uplink G-PDUs that failed each security check (docs/security.md).",
        ),
        panel(
            "Security detections opened",
            "timeseries",
            [
                (
                    "sum by (kind) (increase(sauron_security_detections_total"
                    f"{{{PICK}}}[$__rate_interval]))",
                    "{{kind}}",
                )
            ],
            12,
            y + 24,
            w=12,
            description="TEID scans and spoofing UEs; the agents' /api/v1/security lists them.",
        ),
    ]
    for p in panels:
        fmt = p.pop("targets_format", None)
        if fmt is not None:
            for t in p["targets"]:
                t["format"] = fmt
    return [row, *panels]


def targets_table(y: int) -> dict[str, Any]:
    return panel(
        "SLA targets not met",
        "table",
        [
            (
                'sauron_sla_target_state{instance=~"$instance", slice=~"${slice:regex}", '
                'state!="met"} == 1',
                "",
            )
        ],
        0,
        y,
        w=24,
        h=9,
        description="Each target an agent judges at risk or violated now (the agents' "
        "/api/v1/sla holds the limits, worst values and times).",
    )


def variable(name: str, label: str, query: str) -> dict[str, Any]:
    """The values a PromQL label_values() query lists."""
    return grafana_model.variable(DATASOURCE, name, label, {"query": query, "refId": name}, query)


def dashboard() -> dict[str, Any]:
    return grafana_model.dashboard(
        "sauron-slices-prometheus",
        "Sauron: slice SLAs across nodes (Prometheus)",
        "Per-slice KPIs of every agent the Prometheus data source scrapes; "
        "built from the KPI table in sauron/abi/kpis.py.",
        ["sauron", "5g", "slices", "prometheus"],
        [
            variable("instance", "Agent", "label_values(sauron_build_info, instance)"),
            variable("slice", "Slice", "label_values(sauron_sla_state, slice)"),
        ],
        [*slice_row(0), targets_table(34)],
    )


def render() -> str:
    return grafana_model.render(dashboard())


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
