"""The UPF-drop ledger: a packet is dropped once it entered and has not
left for the settle time; packets that cross an interval's end inside a
slow UPF are in flight, never drops; what was inside before the agent
started is never counted."""

from __future__ import annotations

from sauron.kpi.upf_drops import DropLedger


def test_packets_crossing_interval_ends_are_in_flight_not_dropped() -> None:
    ledger = DropLedger(settle_s=2.0)
    # a UPF that holds every packet ~1.5 intervals: 10 enter each interval
    assert ledger.settle(1.0, 10, 0) == 0 and ledger.in_flight == 10
    assert ledger.settle(2.0, 10, 5) == 0 and ledger.in_flight == 15
    for t in range(3, 10):
        assert ledger.settle(float(t), 10, 10) == 0
    assert ledger.in_flight == 15
    # traffic stops: the rest leaves in the next two intervals
    assert ledger.settle(10.0, 0, 10) == 0
    assert ledger.settle(11.0, 0, 5) == 0
    assert ledger.in_flight == 0


def test_drops_are_counted_exactly_once_settled() -> None:
    ledger = DropLedger(settle_s=2.0)
    assert ledger.settle(1.0, 10, 7) == 0  # 3 inside: lost or late, not yet known
    assert ledger.settle(2.0, 10, 11) == 0  # out retires the oldest first
    assert ledger.in_flight == 2
    assert ledger.settle(3.0, 0, 0) == 0  # the 2 now count as the newer interval's
    assert ledger.settle(4.0, 0, 0) == 2  # settled lost
    assert ledger.in_flight == 0
    assert ledger.settle(5.0, 0, 0) == 0, "a drop is counted once"


def test_a_drop_waits_the_whole_settle_time() -> None:
    ledger = DropLedger(settle_s=2.0)
    ledger.settle(1.0, 4, 0)
    assert ledger.settle(2.5, 0, 0) == 0
    assert ledger.settle(2.999, 0, 0) == 0
    assert ledger.settle(3.0, 0, 1) == 3


def test_packets_inside_before_the_start_retire_nothing() -> None:
    ledger = DropLedger(settle_s=1.0)
    assert ledger.settle(1.0, 0, 6) == 0  # left, entered before the ledger began
    assert ledger.in_flight == 0
    ledger.settle(2.0, 5, 0)
    assert ledger.settle(3.0, 0, 0) == 5
