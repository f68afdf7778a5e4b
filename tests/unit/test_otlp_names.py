"""The OTLP metrics' names and units, held to what an operator sees at the
end of the pipeline: the Collector's Prometheus exporters build a
Prometheus name from an OTLP one by adding the unit's word when the name
lacks it and `_total` to a monotonic Sum (OpenTelemetry's Prometheus
compatibility rules, `translation_strategy: UnderscoreEscapingWithSuffixes`).
`collector_name` below is that rule for the units the agent uses (a model:
no Collector runs here); every family of the engine must come out under
the name /metrics gives it, so the rules and dashboards work on either
path. Also the histogram bounds, against the geometry. No root."""

from __future__ import annotations

import itertools

from fake_data_plane import FakeDataPlane

from sauron.abi import layout
from sauron.abi.histogram import GAP, LATENCY
from sauron.agent.runtime import AgentRuntime
from sauron.catalog import load_catalog
from sauron.export.families import Family, engine_families
from sauron.export.otlp.metrics import explicit_bounds, metric_name, metric_unit

#: UCUM unit -> the word the translation appends
UNIT_WORDS = {"s": "seconds", "By": "bytes", "J": "joules", "W": "watts"}


def collector_name(name: str, unit: str, monotonic_sum: bool) -> str:
    tokens = name.split("_")
    word = UNIT_WORDS.get(unit)
    if unit and word is None:
        raise AssertionError(f"{name}: unit {unit!r} outside the ones modelled")
    if word is not None and word not in tokens:
        tokens.append(word)
    if monotonic_sum:
        tokens = [t for t in tokens if t != "total"] + ["total"]
    return "_".join(tokens)


def families_after_traffic() -> list[Family]:
    catalog = load_catalog()
    data = FakeDataPlane(catalog)
    now = [1_800_000_000.0]
    runtime = AgentRuntime(catalog, data, clock=lambda: now[0])
    for s in catalog.slices:
        data.count(layout.POINT_N3_INGRESS, s.id, layout.DIR_UPLINK, 10, 200)
    now[0] += 1
    runtime.engine.tick()
    return engine_families(runtime.engine)


def test_every_family_reaches_prometheus_under_its_metrics_name() -> None:
    families = families_after_traffic()
    kinds = {f.kind for f in families}
    assert kinds == {"counter", "gauge", "histogram"}
    for f in families:
        name, unit = metric_name(f), metric_unit(f)
        assert collector_name(name, unit, f.kind == "counter") == f.name, (f.name, name, unit)
    units = {f.name: metric_unit(f) for f in families}
    assert units["sauron_transit_latency_seconds"] == "s"
    assert units["sauron_bytes_total"] == "By"
    assert units["sauron_packets_total"] == ""


def test_a_name_whose_unit_is_not_its_last_word_would_be_caught() -> None:
    """The model is not a mirror: a counter named with its unit in the
    middle gets the unit's word again at the end."""
    assert collector_name("sauron_seconds_waited", "s", True) == "sauron_seconds_waited_total"
    assert collector_name("sauron_waited", "s", False) == "sauron_waited_seconds"


def test_bounds_are_every_bucket_edge_of_the_geometry_in_seconds() -> None:
    bounds = explicit_bounds(LATENCY)
    assert len(bounds) == LATENCY.buckets - 1  # the overflow bucket has no upper bound
    assert bounds[0] == 2**LATENCY.min_shift / 1e9
    assert bounds[-1] == 2**LATENCY.max_shift / 1e9
    assert all(a < b for a, b in itertools.pairwise(bounds))
    # a value lands in the bucket whose bounds hold it, as the data path counts
    for ns in (1023, 1024, 1100, 5_000, 123_456_789, 2**36):
        index = LATENCY.bucket(ns)
        lower = 0.0 if index == 0 else bounds[index - 1]
        upper = bounds[index] if index < len(bounds) else float("inf")
        assert lower <= ns / 1e9 < upper, (ns, index)
    assert len(explicit_bounds(GAP)) == GAP.buckets - 1
