"""The arithmetic of `make bench-energy-isolation` (bench/energy_isolation.py)
on made-up rounds: each loaded and sham round against the mean of the
quiet rounds either side, the node's kept share, the rounds that did not
run as meant left out. No root, no kernel."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # bench/ is the checkout's, not installed
from bench.energy_isolation import (  # noqa: E402
    SLICES,
    Round,
    added_and_kept,
    analyse,
    check_rounds,
    order,
)

OTHER_PPS = 5000.0


def made_up(
    kind: str, uj: float, softirq: float, node: float, sent: float = 0.0, foreign: float = 0.0
) -> Round:
    """A 2 s round: each slice 1 000 packets at `uj` microjoules each; the
    node's softirq cycles a second, of them `node` its own; 3 000 packets a
    second received on other links than Sauron's (the testbed's own), plus
    the other traffic's and any foreign ones."""
    return Round(
        kind=kind,
        seconds=2.0,
        joules={n: uj * 1000 / 1e6 for n in SLICES},
        packets=dict.fromkeys(SLICES, 1000),
        cycles_softirq={n: (softirq - node) * 2.0 / len(SLICES) for n in SLICES},
        cycles_process=dict.fromkeys(SLICES, 0.0),
        node={
            "busy_cycles": 1e9,
            "stolen_seconds": 0.0,
            "cycles_softirq": softirq,
            "cycles_softirq_node": node,
            "cycles_softirq_sauron_links": softirq - node,
            "cycles_softirq_other_links": node,
            "cycles_softirq_unowned": 0.0,
            "softirq_packets": 1000 + 3000 + sent + foreign,
            "softirq_packets_sauron": 1000,
            "cycles_process": 0.0,
        },
        other_sent_per_s=sent,
    )


def test_each_pair_comes_in_either_order_between_quiet_rounds() -> None:
    kinds = order(12, seed=1)
    assert len(kinds) == 4 * 12 + 1
    assert kinds[::2] == ["quiet"] * 25
    pairs = [tuple(kinds[i : i + 4 : 2]) for i in range(1, len(kinds), 4)]
    assert set(pairs) == {("loaded", "sham"), ("sham", "loaded")}
    assert order(12, seed=1) == kinds


def test_rounds_against_their_quiet_neighbours() -> None:
    rounds = [
        made_up("quiet", 20.0, 100e6, 40e6),
        made_up("loaded", 23.1, 160e6, 97e6, sent=OTHER_PPS),
        made_up("quiet", 22.0, 100e6, 40e6),
        made_up("sham", 20.0, 100e6, 40e6),
        made_up("quiet", 18.0, 104e6, 44e6),
    ]
    check_rounds(rounds, OTHER_PPS)
    assert all(r.counted for r in rounds)
    figures = analyse(rounds)
    for name in SLICES:
        beside = figures["slices"][name]["beside_other_traffic"]
        assert beside["n"] == 1 and beside["median"] == pytest.approx(0.1)  # 23.1 / 21
        floor = figures["slices"][name]["alone_again_noise_floor"]
        assert floor["n"] == 1 and floor["median"] == pytest.approx(0.0)  # 20 / 20
    # 60 Mcycles/s added, 57 of them the node's
    assert added_and_kept(rounds) == [pytest.approx((60e6, 57e6))]
    assert figures["node_keeps"]["median"] == pytest.approx(0.95)


def test_rounds_that_did_not_run_as_meant_are_left_out() -> None:
    rounds = [
        made_up("quiet", 20.0, 100e6, 40e6),
        # the other traffic's sender did not keep its rate
        made_up("loaded", 30.0, 160e6, 97e6, sent=0.5 * OTHER_PPS),
        made_up("quiet", 20.0, 100e6, 40e6),
        made_up("sham", 20.0, 100e6, 40e6),
        # someone else's traffic on the machine
        made_up("quiet", 25.0, 130e6, 70e6, foreign=0.5 * OTHER_PPS),
        made_up("loaded", 21.0, 160e6, 97e6, sent=OTHER_PPS),
        made_up("quiet", 20.0, 100e6, 40e6),
    ]
    check_rounds(rounds, OTHER_PPS)
    assert [r.counted for r in rounds] == [True, False, True, True, False, True, True]
    figures = analyse(rounds)
    assert [o["round"] for o in figures["left_out"]] == [2, 5]
    assert "other traffic 2500/s" in figures["left_out"][0]["why"]
    assert "2500 foreign packets/s" in figures["left_out"][1]["why"]
    for name in SLICES:
        assert figures["slices"][name]["beside_other_traffic"]["n"] == 0
        assert figures["slices"][name]["alone_again_noise_floor"]["n"] == 0
        assert figures["slices"][name]["met"] is None
    assert figures["node_keeps"]["n"] == 0
