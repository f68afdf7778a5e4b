"""The Grafana dashboard and provisioning in deploy/grafana/: every Flux
query names only measurements, tags and fields that the publisher writes.
What the publisher writes is read from its own output: line protocol made
by sauron/export/influx/points.py from a snapshot with every KPI present
(every latency KPI of the table, loss of every source, bursts, energy,
security counts and a detection), an SLA event, top sessions and a
diagnosis.

No InfluxDB 2 server can be installed here (Debian and PyPI ship none), so
the queries are checked by name, not run."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml
from script_modules import load_script
from timeseries import parse_line

from sauron.abi import diagnosis_layout as dl
from sauron.abi.histogram import LATENCY, Histogram
from sauron.abi.kpis import (
    DIRECTION_LATENCY,
    LATENCY_KPIS,
    LOSS_BURST,
    SECURITY_KPIS,
    SLICE_LATENCY,
)
from sauron.diagnosis.explain import Diagnosed, Evidence, Failing, diagnose
from sauron.diagnosis.probe import Culprit, DiagnosisReading
from sauron.energy.model import NodeEnergy, SliceEnergy
from sauron.export.influx import points
from sauron.kpi.quality import LatencyKpis, LossKpis
from sauron.kpi.records import DirectionKpis, SliceKpis, Snapshot
from sauron.kpi.sessions import SessionVolume
from sauron.kpi.sla import Violation
from sauron.security.detect import TEID_SCAN, SecurityEvent

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "sauron-slices.json"
#: columns every Flux table has, and ones a query makes itself
FLUX_COLUMNS = {"_measurement", "_field", "_value", "_time", "_start", "_stop"}


def latency(samples: int) -> LatencyKpis:
    k = LatencyKpis(samples=samples, mean_ms=1.0, max_ms=2.0, p50_ms=1.0, p90_ms=1.5)
    k.p99_ms, k.p999_ms, k.buckets, k.sum_ns = 2.0, 2.0, {60: samples}, samples * 1_000_000
    return k


def full_direction() -> DirectionKpis:
    d = DirectionKpis(packets_in=10, bytes_in=1000, packets_out=9, bytes_out=900, pps=9, mbps=1)
    for kpi in DIRECTION_LATENCY:
        d.latency[kpi.name] = latency(9)
    d.loss = LossKpis(
        transit_lost=1,
        transit_resolved=10,
        sequence_lost=1,
        sequence_received=9,
        sequence_reordered=1,
        sequence_duplicates=1,
        tcp_retransmissions=1,
        tcp_segments=9,
        burst_buckets={1: 1},
    )
    d.loss.settle_ratios()
    return d


def published_lines() -> list[str]:
    """The publisher's lines for a snapshot with every KPI present."""
    kpis = SliceKpis(name="embb", slice_id=1, snssai="1-000001", sla="violated")
    kpis.uplink, kpis.downlink = full_direction(), full_direction()
    for kpi in SLICE_LATENCY:
        kpis.latency[kpi.name] = latency(5)
    kpis.active_teids, kpis.active_ues = 2, 1
    kpis.energy = SliceEnergy(joules=1.0, watts=1.0, packets=10, bytes=1000, joules_per_gb=1e3)
    kpis.security = {k.name: 1 for k in SECURITY_KPIS}
    snap = Snapshot(
        time=1_800_000_000.0,
        interval_s=1.0,
        slices={"embb": kpis},
        energy=NodeEnergy(method="profile", profile="generic", joules=2.0, watts=2.0),
        security_events=[
            SecurityEvent(TEID_SCAN, 1, "192.0.2.9", (0x500001,), 1.8e9, 1.8e9, 10, 10, 1, True)
        ],
    )
    lines = points.snapshot_points("upf-1", snap, {"embb": 1})
    violation = Violation("embb", "transit_latency_ms.p99.uplink", 5.0, 1, 1.8e9, 9.0)
    lines.append(points.violation_point("upf-1", violation, "opened", "1-000001"))
    violation.ended_interval, violation.ended_at, violation.end_reason = 5, 1.8e9 + 4, "recovered"
    lines.append(points.violation_point("upf-1", violation, "closed", "1-000001"))
    session = SessionVolume(
        teid=0x10001,
        ue_address="10.45.0.2",
        qfi=9,
        uplink_packets=1,
        downlink_packets=1,
        uplink_bytes=100,
        downlink_bytes=100,
    )
    lines += points.session_points("upf-1", kpis, [session], points.time_ns(snap.time))
    waited = Histogram(LATENCY)
    waited.record(7_000_000)
    reading = DiagnosisReading(
        waits={(0, dl.WAIT_RUNQUEUE): waited},
        culprits={0: [Culprit(4242, "stress-ng", 1, 7_000_000, 1)]},
    )
    found = diagnose(
        "embb",
        Failing("transit_latency_ms.p99.uplink", 5.0, 9.0),
        Evidence(functions={0: "open5gs-upfd (pid 812)"}, probe=reading),
    )
    lines += points.diagnosis_points("upf-1", Diagnosed(snap.time, found), "1-000001")
    return lines


def published() -> dict[str, tuple[set[str], set[str]]]:
    """measurement -> (tags, fields), from the publisher's own lines."""
    schema: dict[str, tuple[set[str], set[str]]] = defaultdict(lambda: (set(), set()))
    for text in published_lines():
        for sample in parse_line(text):
            schema[sample.measurement][0].update(k for k, _ in sample.tags)
            schema[sample.measurement][1].add(sample.field)
    assert set(schema) == set(points.MEASUREMENTS), "the sample must cover every measurement"
    return dict(schema)


def flux_queries() -> list[tuple[str, str]]:
    """(where, query) for every panel target and template variable."""
    doc = json.loads(DASHBOARD.read_text())
    found = []
    for p in doc["panels"]:
        for t in p.get("targets", []):
            found.append((f"panel {p['title']!r} {t['refId']}", t["query"]))
    for v in doc["templating"]["list"]:
        if v["type"] == "query":
            found.append((f"variable {v['name']}", v["query"]))
    return found


def referenced(query: str) -> dict[str, set[str]]:
    """The names a query uses: measurements, fields, record columns r.X or
    r["X"], and the columns of group/keep/pivot lists, and schema tags."""
    columns = set(re.findall(r"\br\.([A-Za-z_][A-Za-z0-9_]*)", query))
    columns |= set(re.findall(r'\br\["([^"]+)"\]', query))
    listed: set[str] = set()
    for names in re.findall(r"(?:columns|rowKey|columnKey):\s*\[([^\]]*)\]", query):
        listed |= set(re.findall(r'"([^"]+)"', names))
    return {
        "measurements": set(re.findall(r'r\._measurement == "([^"]+)"', query)),
        "fields": set(re.findall(r'r\._field == "([^"]+)"', query)),
        "columns": columns,
        "listed": listed,
        "schema_tags": set(re.findall(r'tag:\s*"([^"]+)"', query)),
    }


def test_every_query_names_only_what_the_publisher_writes() -> None:
    schema = published()
    queries = flux_queries()
    assert len(queries) >= 10
    checked = 0
    for where, query in queries:
        names = referenced(query)
        assert names["measurements"], f"{where}: names no measurement"
        assert names["measurements"] <= set(schema), (where, names["measurements"])
        tags = set().union(*(schema[m][0] for m in names["measurements"]))
        fields = set().union(*(schema[m][1] for m in names["measurements"]))
        assert names["fields"] <= fields, (where, names["fields"] - fields)
        assert names["schema_tags"] <= tags, (where, names["schema_tags"] - tags)
        pivoted = "pivot(" in query
        # after a pivot, the fields named in the query are columns too
        usable = tags | FLUX_COLUMNS | (names["fields"] if pivoted else set())
        made = set(re.findall(r"(?:\{r with |\{|, )([a-z_]+):", query))  # columns map() makes
        unknown = (names["columns"] | names["listed"]) - usable - made
        if pivoted:
            unknown -= fields
        assert not unknown, f"{where}: {sorted(unknown)} are neither tags nor fields"
        checked += 1
    assert checked == len(queries)


def test_every_metric_a_query_selects_is_one_the_publisher_writes() -> None:
    """A query filters histograms and latencies by their `metric` tag: each
    value it names is one the publisher writes (the KPI table's names)."""
    written = {
        value
        for text in published_lines()
        for sample in parse_line(text)
        for tag, value in sample.tags
        if tag == "metric"
    }
    assert written == {*(k.name for k in LATENCY_KPIS), LOSS_BURST}
    selected = {
        value
        for _, query in flux_queries()
        for value in re.findall(r'r\.metric == "([^"]+)"', query)
    }
    assert selected, "the dashboard selects histograms by metric"
    assert selected <= written, sorted(selected - written)
    assert {k.name for k in LATENCY_KPIS} <= selected, "every latency KPI has a panel"


def test_the_check_refuses_a_misspelt_name() -> None:
    """The check above can fail: a field, tag or measurement the publisher
    does not write is caught."""
    schema = published()
    for bad in (
        'r._measurement == "sauron_slice" and r._field == "sla_state"',
        'r._measurement == "sauron_traffic" and r.dir == "uplink"',
        'r._measurement == "sauron_latencies"',
    ):
        names = referenced(bad)
        m = names["measurements"]
        ok = m <= set(schema)
        if ok:
            tags = set().union(*(schema[x][0] for x in m))
            fields = set().union(*(schema[x][1] for x in m))
            ok = names["fields"] <= fields and names["columns"] <= tags | FLUX_COLUMNS
        assert not ok, bad


def test_percentiles_come_from_summed_histogram_buckets() -> None:
    """Across nodes a percentile is taken from the merged histogram: every
    percentile query sums the buckets by upper bound before histogramQuantile."""
    quantile_queries = [q for _, q in flux_queries() if "histogramQuantile" in q]
    assert len(quantile_queries) >= 4
    for q in quantile_queries:
        assert q.index("fn: sum") < q.index("cumulativeSum") < q.index("histogramQuantile")
        assert '"le"' in q and "r.node" in q and "mean" not in q


def test_dashboard_file_is_the_generator_output_and_provisioning_points_at_it() -> None:
    module = load_script(GRAFANA / "make_dashboards.py")
    assert DASHBOARD.read_text() == module.render()
    source: dict[str, Any] = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "sauron-influxdb.yaml").read_text()
    )
    (ds,) = source["datasources"]
    assert ds["type"] == "influxdb" and ds["jsonData"]["version"] == "Flux"
    uids = {
        t["datasource"]["uid"]
        for p in json.loads(DASHBOARD.read_text())["panels"]
        for t in p.get("targets", [])
    }
    assert uids == {ds["uid"]}
    providers = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "sauron.yaml").read_text()
    )
    assert providers["providers"][0]["type"] == "file"
