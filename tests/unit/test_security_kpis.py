"""The security counts as KPIs: each interval's frames per slice and check
from the data path's monotonic counters, None while the checks are off and
found nothing; counted exactly across an agent's restart (the checkpoint's
reading); summed when the history folds intervals; and the catalog's
`max_security_events_per_s` limit per check opening a violation like any
other target. No kernel: the data plane is one the test feeds."""

from __future__ import annotations

from pathlib import Path

from fake_data_plane import FakeDataPlane

from sauron.abi import layout
from sauron.abi.kpis import SECURITY_KPIS
from sauron.agent.checkpoint import Checkpoint
from sauron.catalog import parse_catalog
from sauron.kpi.engine import KpiEngine
from sauron.kpi.history import History

CATALOG = parse_catalog(
    {
        "slices": [
            {
                "name": "embb",
                "snssai": {"sst": 1},
                "sla": {"max_security_events_per_s": {"unknown_teid": 5}},
            },
            {"name": "urllc", "snssai": {"sst": 2}},
        ]
    },
    "test",
)
EMBB, URLLC = 1, 2
KINDS = [k.name for k in SECURITY_KPIS]


def zeros() -> dict[str, int]:
    return dict.fromkeys(KINDS, 0)


def test_counts_per_interval_slice_and_kind_and_off_is_none() -> None:
    fake = FakeDataPlane(CATALOG)
    now = [100.0]
    engine = KpiEngine(CATALOG, fake.read, clock=lambda: now[0])
    now[0] += 1
    assert all(k.security is None for k in engine.tick().slices.values())
    fake.security_on = True
    fake.failed_check(EMBB, layout.SEC_UNKNOWN_TEID, 3)
    fake.failed_check(URLLC, layout.SEC_GTP_IN_GTP, 2)
    fake.failed_check(URLLC, layout.SEC_UNKNOWN_TEID, 1)
    now[0] += 1
    snap = engine.tick()
    assert snap.slices["embb"].security == {**zeros(), "unknown_teid": 3}
    assert snap.slices["urllc"].security == {**zeros(), "gtp_in_gtp": 2, "unknown_teid": 1}
    assert snap.slices["unclassified"].security == zeros()
    now[0] += 1
    assert engine.tick().slices["embb"].security == zeros()
    # turned off: what was counted before still shows; nothing new is None
    fake.security_on = False
    now[0] += 1
    assert engine.tick().slices["embb"].security is None


def test_the_interval_after_a_restart_counts_what_came_meanwhile(tmp_path: Path) -> None:
    fake = FakeDataPlane(CATALOG)
    fake.security_on = True
    now = [100.0]
    first = KpiEngine(CATALOG, fake.read, clock=lambda: now[0])
    fake.failed_check(EMBB, layout.SEC_UE_SOURCE_SPOOFED, 4)
    now[0] += 1
    first.tick()
    saved = Checkpoint(tmp_path / "checkpoint", "build")
    saved.save(first.counters, now[0])
    # no agent: the data path counts on
    fake.failed_check(EMBB, layout.SEC_UE_SOURCE_SPOOFED, 7)
    now[0] += 30
    reading = saved.load()
    assert reading is not None
    second = KpiEngine(
        CATALOG, fake.read, clock=lambda: now[0], baseline=(reading.counters, reading.at)
    )
    now[0] += 1
    snap = second.tick()
    assert snap.slices["embb"].security == {**zeros(), "ue_source_spoofed": 7}


def test_folded_history_sums_each_kind() -> None:
    fake = FakeDataPlane(CATALOG)
    fake.security_on = True
    now = [100.0]
    history = History(recent=2, fold=2, folded=10)
    engine = KpiEngine(CATALOG, fake.read, clock=lambda: now[0], history=history)
    for frames in (1, 2, 4, 8):
        fake.failed_check(EMBB, layout.SEC_INNER_TO_CORE, frames)
        now[0] += 1
        engine.tick()
    folded = history.between()[0]
    assert folded.interval_s == 2
    assert folded.slices["embb"].security == {**zeros(), "inner_to_core": 3}


def test_a_rate_above_the_catalog_limit_opens_a_violation() -> None:
    fake = FakeDataPlane(CATALOG)
    fake.security_on = True
    now = [100.0]
    engine = KpiEngine(CATALOG, fake.read, clock=lambda: now[0])
    for frames in (4, 12, 12, 12):  # limit 5 per second, 2 s intervals: 10 frames
        fake.failed_check(EMBB, layout.SEC_UNKNOWN_TEID, frames)
        now[0] += 2
        snap = engine.tick()
    checks = [c for c in snap.slices["embb"].checks if "security" in c.target]
    assert [(c.target, c.limit, c.value, c.ok) for c in checks] == [
        ("max_security_events_per_s.unknown_teid", 5.0, 6.0, False)
    ]
    (violation,) = engine.sla.open_violations("embb")
    assert violation.target == "max_security_events_per_s.unknown_teid"
    assert violation.worst == 6.0
    # a slice without the limit is never checked for it
    assert not [c for c in snap.slices["urllc"].checks if "security" in c.target]
