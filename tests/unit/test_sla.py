"""SLA tracking: violations open after N bad of the last M intervals, close
after K good ones ("recovered") or after M intervals without a check ("not
measured"), and record start, end and why, target, worst value and length;
every kind of catalog target is checked, and only when it was measured."""

from __future__ import annotations

import pytest

from sauron.abi.histogram import LATENCY, Histogram
from sauron.catalog import parse_catalog
from sauron.kpi.quality import LatencyKpis, LossKpis
from sauron.kpi.records import DirectionKpis, SliceKpis
from sauron.kpi.sla import SlaTracker, Violation, evaluate

CATALOG = parse_catalog(
    {
        "slices": [
            {
                "name": "embb",
                "snssai": {"sst": 1},
                "sla": {
                    "min_throughput_mbps": {"downlink": 10},
                    "max_throughput_mbps": {"uplink": 50},
                },
            },
            {"name": "plain", "snssai": {"sst": 2}},
            {
                "name": "urllc",
                "snssai": {"sst": 2, "sd": 1},
                "sla": {
                    "transit_latency_ms": {"p50": 2, "p99": 5},
                    "ran_rtt_ms": {"p99": 10},
                    "max_loss_ratio": 0.001,
                },
            },
        ]
    },
    "test",
)


def kpis(name: str, uplink_mbps: float = 0.0, downlink_mbps: float = 0.0) -> SliceKpis:
    return SliceKpis(
        name=name,
        slice_id=1,
        snssai="1",
        uplink=DirectionKpis(mbps=uplink_mbps),
        downlink=DirectionKpis(mbps=downlink_mbps),
    )


def latency(values_ms: list[float]) -> LatencyKpis:
    h = Histogram(LATENCY)
    for v in values_ms:
        h.record(int(v * 1e6))
    return LatencyKpis.from_histogram(h)


def feed(tracker: SlaTracker, downlink: list[float]) -> None:
    for value in downlink:
        tracker.observe({"embb": kpis("embb", 1.0, value)}, at=1000.0 + tracker.interval)


def test_single_bad_interval_does_not_open() -> None:
    t = SlaTracker(CATALOG)
    feed(t, [20, 5, 20, 20, 5, 20, 20])
    assert t.events == [] and t.status("embb") == "at risk"


def test_violation_opens_records_worst_and_closes() -> None:
    t = SlaTracker(CATALOG)
    feed(t, [20, 5, 4, 20, 2])  # three bad of the last five
    assert t.status("embb") == "violated"
    (v,) = t.events
    assert (v.slice_name, v.target, v.limit, v.started_interval, v.started_at) == (
        "embb",
        "min_throughput_mbps.downlink",
        10,
        2,
        1001.0,
    )
    feed(t, [1, 30, 30])
    assert v.open and v.worst == 1 and v.end_reason is None
    feed(t, [30])
    assert not v.open and v.ended_interval == 9 and v.ended_at == 1008.0
    assert v.end_reason == "recovered" and t.changes == [("closed", v)]
    assert v.intervals == 7 and v.bad_intervals == 4
    feed(t, [30, 30])
    assert t.status("embb") == "met"


def test_upper_bounds_and_slices_without_targets() -> None:
    t = SlaTracker(CATALOG)
    for i in range(3):
        t.observe({"embb": kpis("embb", 80, 20), "plain": kpis("plain", 999)}, at=float(i))
    (v,) = t.events
    assert v.target == "max_throughput_mbps.uplink" and v.worst == 80
    assert t.status("plain") == "unmeasured"


def test_latency_rtt_and_loss_targets_are_checked_per_direction() -> None:
    k = kpis("urllc")
    k.uplink.transit = latency([1.0] * 98 + [9.0] * 2)  # p50 ~1 ms, p99 ~9 ms
    k.downlink.transit = latency([1.0] * 100)
    k.ran_rtt = latency([4.0] * 10)
    k.uplink.loss = LossKpis(transit_lost=1, transit_resolved=100)
    k.uplink.loss.settle_ratios()
    k.downlink.loss = LossKpis(sequence_lost=0, sequence_received=5000)
    k.downlink.loss.settle_ratios()
    urllc = CATALOG.get("urllc")
    assert urllc is not None
    checks = {c.target: c for c in evaluate(urllc.spec.sla, k)}
    assert sorted(checks) == [
        "max_loss_ratio.sequence.downlink",
        "max_loss_ratio.transit.uplink",
        "ran_rtt_ms.p99",
        "transit_latency_ms.p50.downlink",
        "transit_latency_ms.p50.uplink",
        "transit_latency_ms.p99.downlink",
        "transit_latency_ms.p99.uplink",
    ]
    bad = {name for name, c in checks.items() if not c.ok}
    assert bad == {"transit_latency_ms.p99.uplink", "max_loss_ratio.transit.uplink"}
    assert checks["transit_latency_ms.p99.uplink"].value == pytest.approx(9.0, rel=0.07)
    assert checks["max_loss_ratio.transit.uplink"].value == pytest.approx(0.01)


def slow_urllc() -> SliceKpis:
    """URLLC with uplink transit samples far above its p99 target."""
    k = kpis("urllc")
    k.uplink.transit = latency([20.0] * 10)
    return k


def p99_uplink(t: SlaTracker) -> list[Violation]:
    return [e for e in t.events if e.target == "transit_latency_ms.p99.uplink"]


def test_a_window_without_checks_closes_a_violation_as_not_measured() -> None:
    t = SlaTracker(CATALOG)  # window 5
    for i in range(3):
        t.observe({"urllc": slow_urllc()}, at=float(i))
    assert t.status("urllc") == "violated"
    (v,) = p99_uplink(t)
    for i in range(3, 7):  # four intervals without samples: not yet
        t.observe({"urllc": kpis("urllc")}, at=float(i))
        assert v.open and t.status("urllc") == "violated"
    t.observe({"urllc": kpis("urllc")}, at=7.0)  # the fifth: a whole window
    assert not v.open and v.end_reason == "not measured"
    assert (v.ended_interval, v.ended_at) == (8, 7.0)
    assert v.intervals == 7 and v.bad_intervals == 3 and v.worst >= 19
    assert ("closed", v) in t.changes
    assert t.status("urllc") == "unmeasured"
    assert [e.end_reason for e in t.events] == ["not measured", "not measured"]  # p50 too


def test_a_check_within_the_window_keeps_a_violation_open() -> None:
    t = SlaTracker(CATALOG)
    for i in range(3):
        t.observe({"urllc": slow_urllc()}, at=float(i))
    (v,) = p99_uplink(t)
    for i in range(3, 23):  # a failed check every fourth interval
        t.observe({"urllc": slow_urllc() if i % 4 == 2 else kpis("urllc")}, at=float(i))
    assert v.open and v.bad_intervals == 3 + 5
    assert t.status("urllc") == "violated"


def test_a_slice_missing_from_the_snapshot_closes_its_violation_too() -> None:
    t = SlaTracker(CATALOG, window=3, open_bad=2, close_good=2)
    for i in range(2):
        t.observe({"urllc": slow_urllc()}, at=float(i))
    (v,) = p99_uplink(t)
    for i in range(2, 5):
        t.observe({}, at=float(i))
    assert v.end_reason == "not measured" and v.ended_interval == 5


def test_old_failures_do_not_reopen_a_violation_closed_as_not_measured() -> None:
    t = SlaTracker(CATALOG)
    for i in range(3):
        t.observe({"urllc": slow_urllc()}, at=float(i))
    for i in range(3, 8):
        t.observe({"urllc": kpis("urllc")}, at=float(i))
    (closed,) = p99_uplink(t)
    assert not closed.open
    # measured again: a fresh start, one failure is only a risk
    t.observe({"urllc": slow_urllc()}, at=8.0)
    assert p99_uplink(t) == [closed] and t.status("urllc") == "at risk"
    t.observe({"urllc": slow_urllc()}, at=9.0)
    assert p99_uplink(t) == [closed]
    t.observe({"urllc": slow_urllc()}, at=10.0)  # three new failures of five
    _, reopened = p99_uplink(t)
    assert reopened.open and reopened.started_interval == 9 and reopened.bad_intervals == 3


def test_a_passed_target_left_unmeasured_is_no_longer_met() -> None:
    t = SlaTracker(CATALOG)
    fast = kpis("urllc")
    fast.uplink.transit = latency([1.0] * 10)
    t.observe({"urllc": fast}, at=0.0)
    assert t.status("urllc") == "met"
    for i in range(1, 5):
        t.observe({"urllc": kpis("urllc")}, at=float(i))
    assert t.status("urllc") == "met"
    t.observe({"urllc": kpis("urllc")}, at=5.0)
    assert t.status("urllc") == "unmeasured" and t.events == []


def test_closed_events_are_dropped_first_when_bounded() -> None:
    t = SlaTracker(CATALOG, window=1, open_bad=1, close_good=1, max_events=2)
    for i, rate in enumerate([1, 20, 1, 20, 1]):
        t.observe({"embb": kpis("embb", 1.0, rate)}, at=float(i))
    assert len(t.events) == 2 and t.events[-1].open and not t.events[0].open
    assert t.events[0].started_interval == 3


def test_flapping_rule_is_validated() -> None:
    with pytest.raises(ValueError, match="open_bad"):
        SlaTracker(CATALOG, window=2, open_bad=3)


def test_energy_per_gb_is_checked_only_when_estimated_with_traffic() -> None:
    from sauron.energy.model import SliceEnergy

    catalog = parse_catalog(
        {"slices": [{"name": "mmtc", "snssai": {"sst": 3}, "sla": {"max_energy_j_per_gb": 500}}]},
        "test",
    )
    spec = catalog.get("mmtc")
    assert spec is not None
    k = kpis("mmtc")
    assert evaluate(spec.spec.sla, k) == []  # no estimator: nothing to check
    k.energy = SliceEnergy(joules=2.0, bytes=0, joules_per_gb=None)
    assert evaluate(spec.spec.sla, k) == []  # no traffic: no J/GB, neither good nor bad
    k.energy = SliceEnergy(joules=2.0, bytes=1_000_000, joules_per_gb=2000.0)
    (check,) = evaluate(spec.spec.sla, k)
    assert check.target == "max_energy_j_per_gb" and check.value == 2000.0 and not check.ok
    k.energy = SliceEnergy(joules=0.2, bytes=1_000_000, joules_per_gb=200.0)
    assert evaluate(spec.spec.sla, k)[0].ok
