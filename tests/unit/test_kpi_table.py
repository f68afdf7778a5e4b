"""The KPI table (sauron/abi/kpis.py) is what every layer shows: each KPI it
lists is measured by the engine, averaged by the history, checked by the
SLA, and present in the REST schemas, the InfluxDB points, the CLI and the
catalog's targets under the table's names, and nothing else is."""

from __future__ import annotations

from dataclasses import fields

from timeseries import parse_line

from sauron.abi.histogram import LATENCY, Histogram
from sauron.abi.kpis import (
    DIRECTION_LATENCY,
    DIRECTIONS,
    LATENCY_KPIS,
    SLICE_LATENCY,
    TRAFFIC_KPIS,
)
from sauron.catalog import SlaTargets, parse_catalog
from sauron.commands.views import KPI_HEAD
from sauron.export.influx import points
from sauron.kpi.history import _average
from sauron.kpi.quality import LatencyKpis
from sauron.kpi.records import DirectionKpis, SliceKpis, Snapshot
from sauron.kpi.sla import evaluate
from sauron.service import schemas


def latency(ms: float, samples: int = 10) -> LatencyKpis:
    h = Histogram(LATENCY)
    for _ in range(samples):
        h.record(int(ms * 1e6))
    return LatencyKpis.from_histogram(h)


def measured_everything(t: float = 1_800_000_000.0) -> Snapshot:
    """A slice with every latency KPI measured: value 1 ms per direction
    KPI uplink, 2 ms downlink, 3 ms for the per-slice ones."""
    kpis = SliceKpis(name="embb", slice_id=1, snssai="1-000001")
    for direction, ms in (("uplink", 1.0), ("downlink", 2.0)):
        d: DirectionKpis = getattr(kpis, direction)
        d.packets_in = d.packets_out = 10
        d.bytes_in = d.bytes_out = 1000
        for kpi in DIRECTION_LATENCY:
            d.latency[kpi.name] = latency(ms)
    for kpi in SLICE_LATENCY:
        kpis.latency[kpi.name] = latency(3.0)
    return Snapshot(time=t, interval_s=1.0, slices={"embb": kpis})


def test_the_records_hold_every_kpi_of_the_table_and_no_other() -> None:
    counted = {f.name for f in fields(DirectionKpis)} - {"latency", "loss"}
    assert counted == {k.name for k in TRAFFIC_KPIS}
    assert set(DirectionKpis().latency) == {k.name for k in DIRECTION_LATENCY}
    assert set(SliceKpis(name="a", slice_id=1, snssai="1").latency) == {
        k.name for k in SLICE_LATENCY
    }


def test_the_rest_schema_lists_the_tables_kpis_under_their_names() -> None:
    direction = set(schemas.Direction.model_fields)
    assert direction == {
        *(k.name for k in TRAFFIC_KPIS),
        *(k.name for k in DIRECTION_LATENCY),
        "loss",
    }
    per_slice = set(schemas.SliceKpis.model_fields)
    assert {*DIRECTIONS, *(k.name for k in SLICE_LATENCY)} <= per_slice
    assert not {k.name for k in DIRECTION_LATENCY} & per_slice
    assert set(schemas.HISTOGRAMS) == {*(k.name for k in LATENCY_KPIS), "loss_burst"}


def test_influx_writes_each_latency_kpi_under_its_name_and_direction() -> None:
    lines = points.snapshot_points("upf-1", measured_everything())
    seen = {
        (dict(s.tags)["metric"], dict(s.tags)["direction"]): s.value
        for text in lines
        for s in parse_line(text)
        if s.measurement == points.LATENCY_M and s.field == "samples"
    }
    expected = {(k.name, d) for k in DIRECTION_LATENCY for d in DIRECTIONS}
    expected |= {(k.name, k.directions[0]) for k in SLICE_LATENCY}
    assert set(seen) == expected
    assert all(v == 10 for v in seen.values())
    traffic = {
        s.field for text in lines for s in parse_line(text) if s.measurement == "sauron_traffic"
    }
    assert traffic == {k.name for k in TRAFFIC_KPIS}


def test_the_catalog_has_a_target_for_each_latency_kpi_and_the_sla_checks_it() -> None:
    assert {k.sla_key for k in LATENCY_KPIS} <= set(SlaTargets.model_fields)
    targets = {k.sla_key: {"p99": 2.5} for k in LATENCY_KPIS}
    raw = {"slices": [{"name": "embb", "snssai": {"sst": 1}, "sla": targets}]}
    catalog = parse_catalog(raw, "test")
    checks = {
        c.target: c
        for c in evaluate(catalog.slices[0].spec.sla, measured_everything().slices["embb"])
    }
    for kpi in DIRECTION_LATENCY:
        assert checks[f"{kpi.sla_key}.p99.uplink"].ok  # ~1 ms
        assert checks[f"{kpi.sla_key}.p99.downlink"].ok  # ~2 ms
    for kpi in SLICE_LATENCY:
        assert not checks[f"{kpi.sla_key}.p99"].ok  # ~3 ms


def test_the_history_averages_every_kpi_of_the_table() -> None:
    snaps = [measured_everything(1.8e9), measured_everything(1.8e9 + 1)]
    merged = _average(snaps).slices["embb"]
    for kpi in TRAFFIC_KPIS:
        if kpi.name in ("packets_in", "packets_out"):
            assert getattr(merged.uplink, kpi.name) == 20
    assert merged.uplink.pps == 10.0  # 20 packets out over 2 s
    for kpi in DIRECTION_LATENCY:
        assert merged.uplink.latency[kpi.name].samples == 20
    for kpi in SLICE_LATENCY:
        assert merged.latency[kpi.name].samples == 20


def test_the_cli_table_has_a_column_for_each_latency_kpi() -> None:
    for kpi in LATENCY_KPIS:
        assert f"{kpi.title} p99" in KPI_HEAD
