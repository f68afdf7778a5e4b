"""The KPI engine: snapshots from real programs fed real frames, with an
injected clock; deltas that survive counter resets; bounded history."""

from __future__ import annotations

import pytest
from frames import gtpu_raw, inner_v4, outer, pdu_session_container
from manual_clock import ManualClock
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from sauron.abi import layout
from sauron.bpf import libbpf
from sauron.bpf.loader import DataPlane
from sauron.bpf.maps import CounterReader, read_counters
from sauron.bpf.rules import program_catalog
from sauron.catalog import Catalog, parse_catalog
from sauron.kpi.engine import KpiEngine, delta
from sauron.kpi.history import History
from sauron.kpi.records import SliceKpis, Snapshot

PDU_SESSION_CONTAINER = 0x85


def _send(dp: DataPlane, point: int, frame: bytes, n: int) -> None:
    for _ in range(n):
        libbpf.test_run(dp.program_fd(point), frame)


@pytest.mark.kernel
def test_snapshot_counts_rates_and_upf_drops(dataplane: DataPlane, catalog: Catalog) -> None:
    clock = ManualClock(1_000_000.0)
    engine = KpiEngine(catalog, lambda: read_counters(dataplane), clock=clock)
    ul_gtp = outer(gtpu_raw(0x10001, payload=inner_v4(src="10.45.0.9", size=72)))
    ul_ip = bytes(Ether() / IP(src="10.45.0.9", dst="198.51.100.2") / UDP() / Raw(bytes(72)))
    dl_ip = bytes(Ether() / IP(src="198.51.100.2", dst="10.46.0.5") / UDP() / Raw(bytes(100)))
    dl_gtp = outer(
        gtpu_raw(
            0x20001,
            payload=bytes(IP(src="198.51.100.2", dst="10.46.0.5") / UDP() / Raw(bytes(100))),
        )
    )
    _send(dataplane, layout.POINT_N3_INGRESS, ul_gtp, 50)
    _send(dataplane, layout.POINT_N6_EGRESS, ul_ip, 48)  # two lost inside the "UPF"
    _send(dataplane, layout.POINT_N6_INGRESS, dl_ip, 20)
    _send(dataplane, layout.POINT_N3_EGRESS, dl_gtp, 20)
    clock.t += 2.0
    snap = engine.tick()
    embb, urllc = snap.slices["embb"], snap.slices["urllc"]
    # two entered and have not left: inside the UPF until the settle time says lost
    assert (embb.uplink.packets_in, embb.uplink.packets_out) == (50, 48)
    assert (embb.uplink.upf_drops, embb.uplink.upf_in_flight) == (0, 2)
    assert embb.uplink.bytes_out == 48 * len(ul_ip)
    assert embb.uplink.pps == 24.0
    assert embb.uplink.mbps == pytest.approx(48 * len(ul_ip) * 8 / 2 / 1e6)
    assert (urllc.downlink.packets_in, urllc.downlink.packets_out) == (20, 20)
    assert embb.active_teids == 1 and urllc.active_teids == 1 and urllc.active_ues == 1
    clock.t += 1.0
    quiet = engine.tick()
    assert quiet.slices["embb"].uplink.packets_in == 0 and quiet.slices["embb"].active_teids == 0
    assert quiet.slices["embb"].uplink.upf_drops == 0, "1 s after: may still leave"
    assert len(engine.history) == 2 and engine.history.latest() is quiet
    clock.t += 1.0
    settled = engine.tick().slices["embb"].uplink
    assert (settled.upf_drops, settled.upf_in_flight) == (2, 0)


@pytest.mark.kernel
def test_engine_survives_counter_reset(dataplane: DataPlane, catalog: Catalog) -> None:
    clock = ManualClock(1_000_000.0)
    engine = KpiEngine(catalog, lambda: read_counters(dataplane), clock=clock)
    frame = outer(gtpu_raw(0x10001, payload=inner_v4(src="10.45.0.9")))
    _send(dataplane, layout.POINT_N3_INGRESS, frame, 30)
    clock.t += 1
    engine.tick()
    dataplane.reset_counters()  # as after an agent or map restart
    _send(dataplane, layout.POINT_N3_INGRESS, frame, 7)
    clock.t += 1
    assert engine.tick().slices["embb"].uplink.packets_in == 7


def test_delta() -> None:
    assert delta(10, 4) == 6 and delta(3, 10) == 3 and delta(0, 0) == 0


def _snap(t: float, packets: int) -> Snapshot:
    k = SliceKpis(name="embb", slice_id=1, snssai="1")
    k.uplink.packets_out = packets
    k.uplink.bytes_out = packets * 100
    return Snapshot(time=t, interval_s=1.0, slices={"embb": k})


def test_history_is_bounded_and_folds_old_snapshots() -> None:
    history = History(recent=10, fold=5, folded=4)
    for i in range(1000):
        history.add(_snap(float(i), packets=i))
    assert len(history.recent) == 10 and len(history.folded) == 4
    assert len(history) <= 10 + 4 + 5
    last_fold = history.folded[-1]
    assert last_fold.interval_s == 5.0
    # a folded step sums its snapshots' counts and averages the rate over its span
    assert last_fold.slices["embb"].uplink.packets_out == sum(range(985, 990))
    assert last_fold.slices["embb"].uplink.pps == pytest.approx(sum(range(985, 990)) / 5)
    window = history.between(since=995.0)
    assert [s.time for s in window] == [995.0, 996.0, 997.0, 998.0, 999.0]


@pytest.mark.kernel
def test_quiet_data_path_reuses_the_last_reading_and_loses_nothing(
    dataplane: DataPlane, catalog: Catalog
) -> None:
    """The agent's reader skips the big tables while `events` stands still;
    a frame arriving after any number of quiet intervals is counted in the
    interval it arrived in, with its session."""
    clock = ManualClock(1_000_000.0)
    reader = CounterReader(dataplane)
    engine = KpiEngine(catalog, reader, clock=clock)
    ul_gtp = outer(gtpu_raw(0x10001, payload=inner_v4(src="10.45.0.9", size=72)))
    _send(dataplane, layout.POINT_N3_INGRESS, ul_gtp, 5)
    clock.t += 1.0
    assert engine.tick().slices["embb"].uplink.packets_in == 5
    for _ in range(4):
        clock.t += 1.0
        quiet = engine.tick().slices["embb"]
        assert quiet.uplink.packets_in == 0 and quiet.active_teids == 0
    # the reading that saw the frames, one more, then the quiet shortcut
    assert reader.full_readings == 1 + CounterReader.QUIET_READINGS
    _send(dataplane, layout.POINT_N3_INGRESS, ul_gtp, 3)
    clock.t += 1.0
    woke = engine.tick().slices["embb"]
    assert woke.uplink.packets_in == 3 and woke.active_teids == 1
    assert reader.full_readings == 2 + CounterReader.QUIET_READINGS
    assert engine.counters.slice(layout.POINT_N3_INGRESS, 1, 0).packets == 8


@pytest.mark.kernel
def test_the_highest_slice_id_is_counted_and_readings_cover_only_the_ids_in_use(
    dataplane: DataPlane,
) -> None:
    """A catalog may use slice ids up to SAURON_MAX_SLICES - 1; the agent
    reads the per-slice maps up to its highest id only, and that partial
    reading agrees with a full one."""
    top = layout.MAX_SLICES - 1
    catalog = parse_catalog(
        {
            "slices": [
                {"name": "low", "id": 1, "snssai": {"sst": 1}, "ue_subnets": ["10.45.0.0/16"]},
                {"name": "top", "id": top, "snssai": {"sst": 2}, "teids": [0x7777]},
            ]
        },
        "two-slice catalog",
    )
    assert catalog.slice_rows == layout.MAX_SLICES
    program_catalog(dataplane, catalog)
    to_top = outer(
        gtpu_raw(
            0x7777,
            extensions=[(PDU_SESSION_CONTAINER, pdu_session_container(5, uplink=True))],
            payload=inner_v4(src="10.9.0.1", size=40),
        )
    )
    to_low = outer(
        gtpu_raw(
            0x1234,
            extensions=[(PDU_SESSION_CONTAINER, pdu_session_container(9, uplink=True))],
            payload=inner_v4(src="10.45.0.2", size=40),
        )
    )
    clock = ManualClock(1_000_000.0)
    engine = KpiEngine(catalog, CounterReader(dataplane, slices=catalog.slice_rows), clock=clock)
    _send(dataplane, layout.POINT_N3_INGRESS, to_top, 7)
    _send(dataplane, layout.POINT_N3_INGRESS, to_low, 4)
    clock.t += 1.0
    snap = engine.tick()
    assert snap.slices["top"].uplink.packets_in == 7
    assert snap.slices["low"].uplink.packets_in == 4

    n3 = layout.POINT_N3_INGRESS
    full = read_counters(dataplane)
    first_two = read_counters(dataplane, slices=2)  # unclassified and "low"
    for reading in (full, first_two):
        assert reading.slice(n3, 1, 0).packets == 4
        assert reading.qfi(n3, 1, 9, 0).packets == 4
    assert full.slice(n3, top, 0).packets == 7 and full.qfi(n3, top, 5, 0).packets == 7
    # beyond the rows read, a partial reading answers zero, never another slice's counts
    assert first_two.slice(n3, top, 0).packets == 0
    assert first_two.qfi(n3, top, 5, 0).packets == 0
    assert len(first_two.slice_stats) == len(full.slice_stats)
