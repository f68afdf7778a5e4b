"""SLA tracking: violations open after N bad of the last M intervals, close
after K good ones, and record start, end, target, worst value and length."""

from __future__ import annotations

from sauron.catalog import parse_catalog
from sauron.sla import SlaTracker

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
        ]
    },
    "test",
)


def feed(tracker: SlaTracker, downlink: list[float]) -> None:
    for value in downlink:
        tracker.observe({"embb": {"downlink": value, "uplink": 1.0}})


def test_single_bad_interval_does_not_open() -> None:
    t = SlaTracker(CATALOG)
    feed(t, [20, 5, 20, 20, 5, 20, 20])
    assert t.events == [] and t.status("embb") == "at risk"


def test_violation_opens_records_worst_and_closes() -> None:
    t = SlaTracker(CATALOG)
    feed(t, [20, 5, 4, 20, 2])  # three bad of the last five
    assert t.status("embb") == "violated"
    (v,) = t.events
    assert (v.slice_name, v.target, v.limit, v.started_interval) == (
        "embb",
        "min_throughput_mbps.downlink",
        10,
        5,
    )
    feed(t, [1, 30, 30])
    assert v.open and v.worst == 1
    feed(t, [30])
    assert not v.open and v.ended_interval == 9 and v.intervals == 4
    feed(t, [30, 30])
    assert t.status("embb") == "met"


def test_upper_bounds_and_slices_without_targets() -> None:
    t = SlaTracker(CATALOG)
    for _ in range(3):
        t.observe({"embb": {"downlink": 20, "uplink": 80}})
    (v,) = t.events
    assert v.target == "max_throughput_mbps.uplink" and v.worst == 80
    assert t.status("plain") == "unmeasured"
