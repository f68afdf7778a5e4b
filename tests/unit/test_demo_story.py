"""The demo's story without a testbed: each kind of violation the demo can
see gets the explanation its measured figures support, and one they do not
support is said to be unexplained; the views show the energy figures, in
place on a terminal and as plain lines in a pipe. No root, no kernel."""

from __future__ import annotations

import io

from rich.console import Console

from sauron.commands.demo_story import (
    DELAY,
    HEALTHY,
    LIMIT,
    LOAD,
    PHASES,
    Timeline,
    explain,
)
from sauron.commands.demo_view import Frame, LiveView, PlainView
from sauron.energy.model import NodeEnergy, SliceEnergy
from sauron.kpi.records import SliceKpis, Snapshot
from sauron.kpi.sla import Violation
from sauron.service.documents import snapshot_doc
from sauron.service.schemas import SnapshotDoc

T0 = 1_800_000_000.0
#: the demo's phases, begun at T0, T0 + 3, T0 + 8 and T0 + 11
TIMELINE = Timeline([(p, T0 + at) for p, at in zip(PHASES, (0.0, 3.0, 8.0, 11.0), strict=True)])


def snapshot(at: float, embb_mbps: float, busy: float = 0.9, drops: int = 0) -> Snapshot:
    slices = {
        name: SliceKpis(name, i + 1, f"{i + 1}-000001")
        for i, name in enumerate(("embb", "urllc", "mmtc"))
    }
    slices["embb"].downlink.mbps = embb_mbps
    slices["embb"].downlink.upf_drops = drops
    for k in slices.values():
        k.energy = SliceEnergy(cycles_process=1e8, joules=0.5, watts=0.5, cumulative_joules=3.0)
    slices["embb"].energy = SliceEnergy(
        cycles_softirq=6e8, cycles_process=8e8, joules=2.0, watts=2.0, cumulative_joules=12.0
    )
    return Snapshot(
        at, 1.0, slices, NodeEnergy(cpus=2, busy_ratio=busy, busy_cycles=2e9, method="profile")
    )


def violation(slice_name: str, target: str, start: float, worst: float, limit: float) -> Violation:
    return Violation(slice_name, target, limit, 0, T0 + start, worst)


RUN = [snapshot(T0 + t, 8.0 if t < 3 else 150.0 if t < 8 else 0.5) for t in range(1, 13)]


def test_the_rate_limit_violation_is_on_purpose() -> None:
    v = violation("embb", "min_throughput_mbps.downlink", 9, 0.41, 1.0)
    e = explain(v, RUN, TIMELINE)
    assert e.kind == "on purpose"
    assert "0.5 Mbit/s" in e.words and "0.41 Mbit/s" in e.words and "1 Mbit/s" in e.words


def test_embb_loss_under_the_limit_is_its_upfs_drops_only_when_drops_were_measured() -> None:
    run = [*RUN[:9], *(snapshot(s.time, 0.5, drops=40) for s in RUN[9:])]
    v = violation("embb", "max_loss_ratio.downlink", 10, 0.3, 0.01)
    e = explain(v, run, TIMELINE)
    assert e.kind == "explained" and "dropped 120 of its downlink packets" in e.words
    # the same loss without a drop the agent counted inside the UPF: no story holds
    assert explain(v, RUN, TIMELINE).kind == "unexplained"


def test_urllcs_transit_under_its_upfs_delay_is_on_purpose() -> None:
    v = violation("urllc", "transit_latency_ms.p99.uplink", 11, 9.4, 5.0)
    e = explain(v, RUN, TIMELINE)
    assert e.kind == "on purpose" and "8 ms" in e.words and "9.4 ms" in e.words, e
    # another target of URLLC's, or the same one before the delay: not on purpose
    assert explain(violation("urllc", "max_loss_ratio", 11, 0.1, 0.01), RUN, TIMELINE).kind != (
        "on purpose"
    )
    assert explain(violation("urllc", v.target, 10, 9.4, 5.0), RUN, TIMELINE).kind != "on purpose"


def test_another_slice_late_under_embbs_bulk_load_names_the_load_and_the_cpus() -> None:
    v = violation("urllc", "transit_latency_ms.p99.downlink", 4, 7.2, 5.0)
    e = explain(v, RUN, TIMELINE)
    assert e.kind == "explained", e
    assert "150 Mbit/s" in e.words and "2 CPUs were 90% busy" in e.words
    assert "70% of that for eMBB" in e.words and "5% for urllc" in e.words


def test_a_violation_the_phases_do_not_explain_is_said_to_be_unexplained() -> None:
    # in the healthy phase eMBB streams (8 Mbit/s): no crowding to blame
    v = violation("urllc", "transit_latency_ms.p99.uplink", 1, 6.0, 5.0)
    e = explain(v, RUN, TIMELINE)
    assert e.kind == "unexplained" and f"in the {HEALTHY} phase" in e.words
    # eMBB's own latency is never blamed on eMBB
    v = violation("embb", "transit_latency_ms.p99.downlink", 4, 80.0, 50.0)
    assert explain(v, RUN, TIMELINE).kind == "unexplained"


def test_the_timeline_knows_the_phase_of_any_moment() -> None:
    assert TIMELINE.phase_at(T0 - 1) is None
    phases = [TIMELINE.phase_at(T0 + t) for t in (0, 4, 9, 20)]
    assert [p.name for p in phases if p is not None] == [HEALTHY, LOAD, LIMIT, DELAY]


def frame() -> Frame:
    doc = SnapshotDoc.model_validate(snapshot_doc(RUN[5]))
    return Frame(doc, LOAD, 6.0, 20.0)


def test_the_plain_view_prints_each_interval_with_its_energy() -> None:
    lines: list[str] = []
    with PlainView(lines.append) as view:
        view.say("a line of the story")
        view.show(frame())
    assert lines[0] == "a line of the story"
    table = lines[1].splitlines()
    assert "phase: eMBB load" in table[0] and "t=   6 s of 20" in table[0]
    assert table[1].split()[-3:] == ["W", "J", "J/GB"]
    embb = next(line for line in table if line.startswith("embb"))
    assert embb.split()[-3:-1] == ["2.00", "12.0"]
    assert "150.00" in embb  # the downlink's Mbit/s


def test_the_live_view_updates_one_table_in_place_on_a_terminal() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=160, color_system=None)
    with LiveView(console) as view:
        view.show(frame())
        view.say("the story goes on")
        view.show(frame())
    out = screen.getvalue()
    # redrawn in place: the cursor goes back up over the last table
    assert "\x1b[" in out and "the story goes on" in out
    assert out.count("phase: eMBB load") >= 2 and "J/GB" in out and "12.0" in out


def test_embbs_energy_per_gb_under_the_limit_is_the_limits_consequence() -> None:
    v = violation("embb", "max_energy_j_per_gb", 9, 798.0, 500.0)
    e = explain(v, RUN, TIMELINE)
    assert e.kind == "explained" and "2.00 W" in e.words and "0.50 Mbit/s" in e.words, e
    # before the limit, the same figure has no story
    v = violation("embb", "max_energy_j_per_gb", 4, 798.0, 500.0)
    assert explain(v, RUN, TIMELINE).kind == "unexplained"
