"""Transit stamps, RTT, GTP-U sequence loss, echo RTT and retransmissions,
in three stages: build frames (scapy), run them through the real programs
with BPF_PROG_TEST_RUN at the points they would pass, check the maps."""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Iterator

import pytest
from frames import GNB, NAT, SERVER, UE, UPF, gtpu, gtpu_raw, natted, outer, plain, ul_packet
from scapy.layers.inet import IP, TCP, UDP
from scapy.packet import Packet, Raw

from sauron.abi import layout
from sauron.abi.histogram import GAP
from sauron.abi.kpis import LATENCY_BY_NAME
from sauron.bpf import libbpf
from sauron.bpf.loader import ENTRY_POINTS, MEASURE_PROGRAMS, XDP, DataPlane
from sauron.bpf.measurements import (
    MeasureSettings,
    TransitExpiry,
    apply_settings,
    read_latency,
    read_measure_stats,
    read_peer_rtt,
    read_sequences,
)

pytestmark = [pytest.mark.kernel]

EMBB, URLLC, MMTC = 1, 2, 3
UL_TEID, DL_TEID = 0x10007, 0x10008  # eMBB TEID range
UL, DL = layout.DIR_UPLINK, layout.DIR_DOWNLINK
N3_IN, N3_OUT = layout.POINT_N3_INGRESS, layout.POINT_N3_EGRESS
N6_IN, N6_OUT = layout.POINT_N6_INGRESS, layout.POINT_N6_EGRESS


@pytest.fixture()
def measuring(dataplane: DataPlane) -> Iterator[DataPlane]:
    apply_settings(
        dataplane,
        MeasureSettings(transit_one_in=((0, 1), (EMBB, 1), (URLLC, 1), (MMTC, 1))),
    )
    yield dataplane


def run(dp: DataPlane, point: int, frame: bytes) -> None:
    """Run stage: the frame passes unchanged, whatever was measured."""
    result = libbpf.test_run(dp.program_fd(point), frame)
    assert result.retval == dp.pass_verdict(point)
    assert result.data_out == frame


def transit(dp: DataPlane, metric: int = layout.LAT_TRANSIT) -> dict[tuple[int, int], int]:
    return {(s, d): h.count for (m, s, d), h in read_latency(dp).items() if m == metric}


# --- transit ------------------------------------------------------------------


def test_uplink_stamped_on_n3_matched_on_n6_after_nat(measuring: DataPlane) -> None:
    packet = ul_packet()
    run(measuring, N3_IN, gtpu(packet, UL_TEID, uplink=True))
    assert transit(measuring) == {}
    run(measuring, N6_OUT, plain(natted(packet)))
    assert transit(measuring) == {(EMBB, UL): 1}
    stats = read_measure_stats(measuring)[(EMBB, UL)]
    assert (stats.transit_stamped, stats.transit_matched, stats.transit_duplicate) == (1, 1, 0)
    assert TransitExpiry(measuring).pending() == 0
    hist = read_latency(measuring)[(layout.LAT_TRANSIT, EMBB, UL)]
    assert 0 < hist.total == hist.maximum  # one sample: sum and max are it


def test_jitter_is_the_difference_between_consecutive_transit_times(
    measuring: DataPlane,
) -> None:
    """Two uplink packets through the UPF on one CPU, one held 3 ms, one not:
    one jitter sample, exactly the difference of the two transit times (the
    larger one less the smaller: twice the maximum less the sum)."""
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})  # consecutive samples on one CPU
    try:
        for held_s, payload in ((0.003, b"held"), (0.0, b"not held")):
            packet = ul_packet(payload)
            run(measuring, N3_IN, gtpu(packet, UL_TEID, uplink=True))
            time.sleep(held_s)
            run(measuring, N6_OUT, plain(natted(packet)))
    finally:
        os.sched_setaffinity(0, cpus)
    latency = read_latency(measuring)
    transit_ul = latency[(layout.LAT_TRANSIT, EMBB, UL)]
    jitter = latency[(LATENCY_BY_NAME["transit_jitter"].metric, EMBB, UL)]
    assert transit_ul.count == 2 and jitter.count == 1
    assert jitter.total == 2 * transit_ul.maximum - transit_ul.total
    # the held packet's transit took at least the hold; the jitter is that
    # less the other's (which a preemption between its two runs lengthens)
    assert transit_ul.maximum >= 3_000_000
    assert jitter.total >= 3_000_000 - (transit_ul.total - transit_ul.maximum)
    assert transit(measuring, LATENCY_BY_NAME["transit_jitter"].metric) == {(EMBB, UL): 1}


def test_downlink_stamped_on_n6_matched_on_n3(measuring: DataPlane) -> None:
    packet = IP(src=SERVER, dst=UE, id=99) / UDP(sport=5000, dport=40000) / Raw(b"downlink")
    run(measuring, N6_IN, plain(packet))
    routed = IP(bytes(packet))
    routed.ttl -= 1
    del routed.chksum
    run(measuring, N3_OUT, gtpu(IP(bytes(routed)), DL_TEID, uplink=False))
    assert transit(measuring) == {(EMBB, DL): 1}


def test_downlink_through_nat_goes_to_the_tunnels_slice(measuring: DataPlane) -> None:
    # on N6 the packet is for the NAT address: no slice is known there
    packet = IP(src=SERVER, dst=NAT, id=5) / UDP(sport=5000, dport=61000) / Raw(b"reply")
    run(measuring, N6_IN, plain(packet))
    inner = IP(src=SERVER, dst=UE, id=5) / UDP(sport=5000, dport=40000) / Raw(b"reply")
    run(measuring, N3_OUT, gtpu(inner, DL_TEID, uplink=False))
    assert transit(measuring) == {(EMBB, DL): 1}
    assert read_measure_stats(measuring)[(0, DL)].transit_matched == 1


def test_unmatched_stamp_expires_as_loss_after_the_timeout(measuring: DataPlane) -> None:
    now = [0]
    expiry = TransitExpiry(measuring, timeout_s=2.0, clock=lambda: now[0])
    run(measuring, N3_IN, gtpu(ul_packet(b"never-leaves"), UL_TEID, uplink=True))
    stamped_at = time.monotonic_ns()
    now[0] = stamped_at + 1_000_000_000
    assert expiry.sweep() == {}
    assert expiry.pending() == 1
    now[0] = stamped_at + 3_000_000_000
    assert expiry.sweep() == {(EMBB, UL): 1}
    assert expiry.pending() == 0
    assert read_measure_stats(measuring)[(EMBB, UL)].transit_expired == 1
    # the packet leaving now is not matched: it was already counted lost
    run(measuring, N6_OUT, plain(natted(ul_packet(b"never-leaves"))))
    assert transit(measuring) == {}


def test_gro_aggregate_is_counted_not_stamped(measuring: DataPlane) -> None:
    """Longer than a 1500-byte packet: the UPF's kernel would split it, and
    no piece could match the stamp (nor should its loss be counted)."""
    big = IP(src=SERVER, dst=UE) / UDP(sport=5000, dport=40000) / Raw(bytes(4000))
    run(measuring, N6_IN, plain(big))
    assert TransitExpiry(measuring).pending() == 0
    stats = read_measure_stats(measuring)[(EMBB, DL)]
    assert (stats.transit_stamped, stats.transit_aggregate) == (0, 1)


def test_same_fingerprint_twice_is_counted_not_stamped_again(measuring: DataPlane) -> None:
    frame = gtpu(ul_packet(), UL_TEID, uplink=True)
    run(measuring, N3_IN, frame)
    run(measuring, N3_IN, frame)
    stats = read_measure_stats(measuring)[(EMBB, UL)]
    assert (stats.transit_stamped, stats.transit_duplicate) == (1, 1)


def _fill_slots(
    dp: DataPlane, stamped_at_ns: int, slice_id: int = MMTC, step: int = 1, first: int = 0
) -> None:
    """Transit slots (every one, or one in `step` from `first`) holding
    another packet's pending stamp."""
    table = dp.table("transit_slots")
    for i in range(first, layout.TRANSIT_STAMPS, step):
        slot = layout.TransitSlot(
            state=layout.TRANSIT_PENDING,
            ns=stamped_at_ns,
            fp=layout.Fingerprint(ip_id=i, l4_a=0xFFFFFFFF, direction=DL),
            slice_id=slice_id,
        )
        table[ctypes.c_uint32(i)] = table.Leaf.from_buffer_copy(bytes(slot))


def test_a_slot_held_by_a_live_stamp_is_counted_busy(measuring: DataPlane) -> None:
    _fill_slots(measuring, time.monotonic_ns())
    run(measuring, N3_IN, gtpu(ul_packet(), UL_TEID, uplink=True))
    stats = read_measure_stats(measuring)[(EMBB, UL)]
    assert (stats.transit_stamped, stats.transit_table_full) == (0, 1)
    assert (MMTC, DL) not in read_measure_stats(measuring)


@pytest.mark.parametrize("held", [0, 1], ids=["first-way-held", "second-way-held"])
def test_a_stamp_takes_the_other_way_when_one_slot_is_held(measuring: DataPlane, held: int) -> None:
    """A fingerprint has two slots: with one of every pair held by a live
    stamp, the packet is stamped in the other and matched there."""
    _fill_slots(measuring, time.monotonic_ns(), step=2, first=held)
    packet = ul_packet(b"two-ways")
    run(measuring, N3_IN, gtpu(packet, UL_TEID, uplink=True))
    stats = read_measure_stats(measuring)[(EMBB, UL)]
    assert (stats.transit_stamped, stats.transit_table_full) == (1, 0)
    run(measuring, N6_OUT, plain(natted(packet)))
    assert transit(measuring) == {(EMBB, UL): 1}
    assert read_measure_stats(measuring)[(EMBB, UL)].transit_matched == 1


def test_a_stamp_takes_an_overdue_slot_and_counts_its_stamp_lost(measuring: DataPlane) -> None:
    """No waiting for the agent's sweep: the overdue stamp was lost anyway."""
    TransitExpiry(measuring, timeout_s=1.0)
    _fill_slots(measuring, time.monotonic_ns() - 5_000_000_000)
    packet = ul_packet(b"takes-a-slot")
    run(measuring, N3_IN, gtpu(packet, UL_TEID, uplink=True))
    stats = read_measure_stats(measuring)
    assert (stats[(EMBB, UL)].transit_stamped, stats[(EMBB, UL)].transit_table_full) == (1, 0)
    assert stats[(MMTC, DL)].transit_expired == 1
    run(measuring, N6_OUT, plain(natted(packet)))
    assert transit(measuring) == {(EMBB, UL): 1}


def test_expiry_leaves_a_slot_matched_and_stamped_again_meanwhile(measuring: DataPlane) -> None:
    """The sweep read a stamp's state; before it frees the slot the packet
    leaves (matched) and the same packet's twin is stamped in the same slot:
    the sweep's swap fails, nothing is counted lost, the new stamp stays."""
    now = [0]
    expiry = TransitExpiry(measuring, timeout_s=2.0, clock=lambda: now[0])
    packet = ul_packet(b"twice")
    run(measuring, N3_IN, gtpu(packet, UL_TEID, uplink=True))
    slots = measuring.mapped("transit_slots", layout.TransitSlot, cpu_major=False)
    words = slots.words()[0]
    (index,) = (words[:, 0] & layout.TRANSIT_PHASE == layout.TRANSIT_PENDING).nonzero()[0]
    read_state = int(words[index, 0])
    run(measuring, N6_OUT, plain(natted(packet)))
    run(measuring, N3_IN, gtpu(packet, UL_TEID, uplink=True))
    assert int(words[index, 0]) != read_state and expiry.pending() == 1
    pair = index.astype("<u8").tobytes() + read_state.to_bytes(8, "little")
    out = libbpf.test_run(measuring.transit_expiry_fd(), pair).data_out
    assert out == pair  # not freed: its state comes back as sent
    assert expiry.pending() == 1
    assert read_measure_stats(measuring)[(EMBB, UL)].transit_expired == 0
    # once due, the sweep frees the new stamp and counts it
    now[0] = time.monotonic_ns() + 3_000_000_000
    assert expiry.sweep() == {(EMBB, UL): 1}
    assert read_measure_stats(measuring)[(EMBB, UL)].transit_expired == 1


def test_sampling_takes_the_same_packets_on_both_sides(measuring: DataPlane) -> None:
    apply_settings(measuring, MeasureSettings(transit_one_in=((EMBB, 4),)))
    packets = [ul_packet(f"pkt-{i:05d}".encode(), ip_id=i) for i in range(400)]
    for p in packets:
        run(measuring, N3_IN, gtpu(p, UL_TEID, uplink=True))
    stamped = read_measure_stats(measuring)[(EMBB, UL)].transit_stamped
    assert 50 <= stamped <= 150, stamped  # one in four, by hash
    for p in packets:
        run(measuring, N6_OUT, plain(natted(p)))
    assert transit(measuring) == {(EMBB, UL): stamped}
    assert TransitExpiry(measuring).pending() == 0


def test_nothing_is_measured_when_measuring_is_off(dataplane: DataPlane) -> None:
    packet = ul_packet()
    run(dataplane, N3_IN, gtpu(packet, UL_TEID, uplink=True, seq=1))
    run(dataplane, N6_OUT, plain(natted(packet)))
    assert read_latency(dataplane) == {}
    assert read_measure_stats(dataplane) == {}
    assert TransitExpiry(dataplane).pending() == 0


# --- GTP-U sequence numbers -----------------------------------------------------


SEQUENCE_PATTERNS = {
    # name: (sequence numbers, received, lost, reordered, duplicates, {gap: bursts})
    "in_order": ([0, 1, 2, 3, 4, 5], 6, 0, 0, 0, {}),
    "gap_of_1": ([0, 1, 2, 4, 5], 5, 1, 0, 0, {1: 1}),
    "gap_of_5": ([0, 1, 7, 8], 4, 5, 0, 0, {5: 1}),
    "reorder": ([0, 1, 3, 2, 4], 5, 0, 1, 0, {}),
    "duplicate": ([0, 1, 1, 2], 3, 0, 0, 1, {}),
    "wrap": ([65533, 65534, 65535, 0, 1], 5, 0, 0, 0, {}),
    "gap_across_wrap": ([65534, 65535, 2, 3], 4, 2, 0, 0, {2: 1}),
    "late_fills_part_of_a_burst": ([0, 1, 6, 3], 4, 3, 1, 0, {1: 1, 2: 1}),
    "burst_then_all_late": ([0, 5, 1, 2, 3, 4], 6, 0, 4, 0, {}),
}


@pytest.mark.parametrize("name", sorted(SEQUENCE_PATTERNS))
def test_sequence_patterns(measuring: DataPlane, name: str) -> None:
    seqs, received, lost, reordered, duplicates, gaps = SEQUENCE_PATTERNS[name]
    for i, seq in enumerate(seqs):
        run(measuring, N3_IN, gtpu(ul_packet(f"s{i}".encode(), ip_id=i), UL_TEID, True, seq=seq))
    (record,) = read_sequences(measuring)
    assert (record.teid, record.direction, record.slice_id) == (UL_TEID, UL, EMBB)
    assert record.receiver == UPF
    got = (record.received, record.lost, record.reordered, record.duplicates)
    assert got == (received, lost, reordered, duplicates)
    stats = read_measure_stats(measuring)[(EMBB, UL)]
    per_slice = (stats.seq_received, stats.seq_lost, stats.seq_reordered, stats.seq_duplicates)
    assert per_slice == got
    want = [0] * GAP.buckets
    for gap, bursts in gaps.items():
        want[GAP.bucket(gap)] += bursts
    assert list(stats.seq_gaps) == want


def test_sequences_are_kept_per_teid_and_direction(measuring: DataPlane) -> None:
    for seq in (0, 2):
        run(measuring, N3_IN, gtpu(ul_packet(f"u{seq}".encode()), UL_TEID, True, seq=seq))
    for seq in (0, 1):
        inner = IP(src=SERVER, dst=UE) / UDP(sport=5000, dport=40000) / Raw(f"d{seq}".encode())
        run(measuring, N3_OUT, gtpu(inner, DL_TEID, uplink=False, seq=seq))
    records = {
        (r.teid, r.receiver, r.direction): (r.received, r.lost) for r in read_sequences(measuring)
    }
    assert records == {(UL_TEID, UPF, UL): (2, 1), (DL_TEID, GNB, DL): (2, 0)}


def test_numbering_restart_is_not_loss(measuring: DataPlane) -> None:
    for i, seq in enumerate([100, 101, 102, 20000, 20001]):
        run(measuring, N3_IN, gtpu(ul_packet(f"r{i}".encode()), UL_TEID, True, seq=seq))
    stats = read_measure_stats(measuring)[(EMBB, UL)]
    assert (stats.seq_received, stats.seq_lost, stats.seq_resyncs) == (5, 0, 1)


# --- GTP-U echo -----------------------------------------------------------------


def echo(msg_type: int, seq: int, from_gnb: bool) -> bytes:
    src, dst = (GNB, UPF) if from_gnb else (UPF, GNB)
    return outer(gtpu_raw(0, msg_type=msg_type, seq=seq, payload=b"\x0e\x00"), src=src, dst=dst)


def test_echo_round_trips_per_peer_and_initiator(measuring: DataPlane) -> None:
    # the UPF asks the gNB (path RTT) ...
    run(measuring, N3_OUT, echo(1, seq=7, from_gnb=False))
    run(measuring, N3_IN, echo(2, seq=7, from_gnb=True))
    # ... and the gNB asks the UPF (how fast this node answers)
    run(measuring, N3_IN, echo(1, seq=9, from_gnb=True))
    run(measuring, N3_OUT, echo(2, seq=9, from_gnb=False))
    # a response nobody asked for is no sample
    run(measuring, N3_IN, echo(2, seq=99, from_gnb=True))
    peers = {k: h.count for k, h in read_peer_rtt(measuring).items()}
    assert peers == {(GNB, layout.ECHO_LOCAL): 1, (GNB, layout.ECHO_PEER): 1}


# --- TCP round trips ------------------------------------------------------------


def tcp(
    src: str,
    dst: str,
    sport: int,
    dport: int,
    flags: str,
    seq: int,
    ack: int = 0,
    ts: tuple[int, int] | None = None,
    payload: bytes = b"",
) -> Packet:
    options = [("NOP", None), ("NOP", None), ("Timestamp", ts)] if ts else []
    return (
        IP(src=src, dst=dst)
        / TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack, options=options)
        / Raw(payload)
    )


def test_ran_rtt_from_timestamp_echo(measuring: DataPlane) -> None:
    data = tcp(SERVER, UE, 443, 40000, "A", seq=1, ack=1, ts=(1000, 50), payload=b"x" * 100)
    run(measuring, N3_OUT, gtpu(data, DL_TEID, uplink=False))
    ack = tcp(UE, SERVER, 40000, 443, "A", seq=1, ack=101, ts=(60, 1000))
    run(measuring, N3_IN, gtpu(ack, UL_TEID, uplink=True))
    assert transit(measuring, layout.LAT_RAN_RTT) == {(EMBB, DL): 1}


def test_ran_rtt_from_handshake_without_timestamps(measuring: DataPlane) -> None:
    syn_ack = tcp(SERVER, UE, 443, 40000, "SA", seq=5000, ack=1)
    run(measuring, N3_OUT, gtpu(syn_ack, DL_TEID, uplink=False))
    # an unrelated ACK does not match
    other = tcp(UE, SERVER, 40000, 443, "A", seq=1, ack=777)
    run(measuring, N3_IN, gtpu(other, UL_TEID, uplink=True))
    assert transit(measuring, layout.LAT_RAN_RTT) == {}
    ack = tcp(UE, SERVER, 40000, 443, "A", seq=1, ack=5001)
    run(measuring, N3_IN, gtpu(ack, UL_TEID, uplink=True))
    assert transit(measuring, layout.LAT_RAN_RTT) == {(EMBB, DL): 1}


def test_dn_rtt_from_handshake_on_n6(measuring: DataPlane) -> None:
    run(measuring, N6_OUT, plain(tcp(UE, SERVER, 40000, 443, "S", seq=100)))
    run(measuring, N6_IN, plain(tcp(SERVER, UE, 443, 40000, "SA", seq=9000, ack=101)))
    assert transit(measuring, layout.LAT_DN_RTT) == {(EMBB, UL): 1}


def test_rtt_timestamps_rate_limited_by_mask(measuring: DataPlane) -> None:
    apply_settings(measuring, MeasureSettings(rtt_timestamp_one_in=4))
    for tsval in range(1000, 1008):
        seg = tcp(SERVER, UE, 443, 40000, "A", seq=tsval, ack=1, ts=(tsval, 5), payload=b"y")
        run(measuring, N3_OUT, gtpu(seg, DL_TEID, uplink=False))
    for tsval in range(1000, 1008):
        ack = tcp(UE, SERVER, 40000, 443, "A", seq=1, ack=tsval + 1, ts=(9, tsval))
        run(measuring, N3_IN, gtpu(ack, UL_TEID, uplink=True))
    # only values with the two low bits clear: 1000 and 1004
    assert transit(measuring, layout.LAT_RAN_RTT) == {(EMBB, DL): 2}


# --- retransmissions ------------------------------------------------------------


def test_tcp_retransmission_counted_per_slice(measuring: DataPlane) -> None:
    for seq in (1000, 1100, 1200, 1100):
        seg = tcp(UE, SERVER, 40000, 443, "A", seq=seq, ack=1, payload=b"z" * 100)
        run(measuring, N3_IN, gtpu(seg, UL_TEID, uplink=True))
    stats = read_measure_stats(measuring)[(EMBB, UL)]
    assert (stats.tcp_data_segments, stats.tcp_retransmissions) == (4, 1)


def test_measurement_programs_are_installed(dataplane: DataPlane) -> None:
    """Every entry point's tail call finds its point's measurement program."""
    installed = {(m[3], m[4]) for m in MEASURE_PROGRAMS}
    for ep in ENTRY_POINTS:
        array = "measure_xdp_prog" if ep.hook == XDP else "measure_tc_prog"
        assert (array, ep.point) in installed, ep
        assert dataplane.table(array)[ctypes.c_int(ep.point)].value > 0, ep
