"""The evidence tap in the kernel: the data-path programs (BPF_PROG_TEST_RUN
at N3 ingress, XDP, and N3 egress, TC) copy the first 128 bytes of the
GTP-U frames of the slices flagged, and only theirs, into the ring buffer
the agent drains; every field of each record is held to the frame the test
sent. A full ring drops the copy, never waits, and counts it. The pcapng the
keeper writes from them is read back by tshark and by `sauron replay`, and
both see the frames the test sent."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from frames import gtpu, ul_packet
from scapy.layers.inet import IP, UDP
from scapy.packet import Raw

from sauron.abi import layout
from sauron.bpf import libbpf
from sauron.bpf.evidence import EvidenceTap
from sauron.bpf.loader import DataPlane
from sauron.bpf.measurements import apply_settings, settings_for
from sauron.catalog import Catalog
from sauron.diagnosis.evidence import EvidenceKeeper

pytestmark = [pytest.mark.kernel]

EMBB_TEID = 0x10007
URLLC_TEID = 0x20007
SNAPLEN = layout.EVIDENCE_SNAPLEN


def uplink(teid: int, n: int, payload: int) -> bytes:
    return gtpu(ul_packet(bytes(payload), ip_id=n), teid, uplink=True, seq=n)


def downlink(teid: int, n: int) -> bytes:
    packet = IP(src="198.51.100.9", dst="10.45.0.7", id=n) / UDP(sport=5000, dport=40000)
    return gtpu(packet / Raw(bytes(200)), teid, uplink=False)


def send(dataplane: DataPlane, point: int, frame: bytes, repeat: int = 1) -> None:
    run = libbpf.test_run(dataplane.program_fd(point), frame, repeat=repeat)
    assert run.retval == dataplane.pass_verdict(point)  # fail-open: passed, unchanged


def test_only_the_flagged_slices_frames_are_kept(dataplane: DataPlane, catalog: Catalog) -> None:
    embb = catalog.get("embb")
    assert embb is not None
    tap = EvidenceTap(dataplane)
    try:
        tap.capture({embb.id})
        # the agent's measurement settings, written after, keep the flag
        apply_settings(dataplane, settings_for(catalog))
        before = time.time_ns()
        sent: list[tuple[int, bytes]] = []
        for n in range(12):
            # short frames (under the snap length) and long ones
            frame = uplink(EMBB_TEID, n, payload=8 if n % 2 else 400)
            send(dataplane, layout.POINT_N3_INGRESS, frame)
            sent.append((layout.POINT_N3_INGRESS, frame))
            send(dataplane, layout.POINT_N3_INGRESS, uplink(URLLC_TEID, n, payload=400))
        for n in range(3):
            frame = downlink(EMBB_TEID, n)
            send(dataplane, layout.POINT_N3_EGRESS, frame)
            sent.append((layout.POINT_N3_EGRESS, frame))
        after = time.time_ns()
        kept = tap.frames()
        assert [(f.point, f.data) for f in kept] == [(p, fr[:SNAPLEN]) for p, fr in sent]
        for f, (point, frame) in zip(kept, sent, strict=True):
            assert f.frame_len == len(frame)
            assert f.slice_id == embb.id and f.teid == EMBB_TEID
            expected = (
                layout.DIR_UPLINK if point == layout.POINT_N3_INGRESS else layout.DIR_DOWNLINK
            )
            assert f.direction == expected
            # monotonic stamps moved to the unix clock (the move is read once: 1 ms)
            assert before - 1_000_000 <= f.time_ns <= after + 1_000_000
        assert [f.time_ns for f in kept] == sorted(f.time_ns for f in kept)

        tap.capture(())
        measure = layout.Config.from_buffer_copy(bytes(dataplane.table("config")[0])).measure
        assert not measure & layout.MEASURE_EVIDENCE
        send(dataplane, layout.POINT_N3_INGRESS, uplink(EMBB_TEID, 99, payload=400))
        assert tap.frames() == []
    finally:
        tap.close()
        apply_settings(dataplane, settings_for(catalog).off())


def test_a_full_ring_drops_the_copy_and_counts_it(dataplane: DataPlane, catalog: Catalog) -> None:
    embb = catalog.get("embb")
    assert embb is not None
    tap = EvidenceTap(dataplane)
    try:
        tap.capture({embb.id})
        missed_before = tap.missed()
        sent = 20_000  # more than the ring holds (2 MiB of 160-byte records)
        send(dataplane, layout.POINT_N3_INGRESS, uplink(EMBB_TEID, 1, payload=400), repeat=sent)
        kept = len(tap.frames())
        missed = tap.missed() - missed_before
        assert kept + missed == sent
        assert kept == tap.ring.size // 160
        # room again once drained
        send(dataplane, layout.POINT_N3_INGRESS, uplink(EMBB_TEID, 2, payload=400))
        assert len(tap.frames()) == 1
    finally:
        tap.close()


def test_the_pcapng_reads_in_tshark_and_replay(
    dataplane: DataPlane, catalog: Catalog, tmp_path: Path
) -> None:
    embb = catalog.get("embb")
    assert embb is not None
    keeper = EvidenceKeeper(
        EvidenceTap(dataplane), lambda: {"embb": embb.id}, tmp_path / "evidence"
    )
    try:
        keeper.watch({"embb"})
        sent = [uplink(EMBB_TEID, n, payload=8 if n % 3 == 0 else 900) for n in range(9)]
        for frame in sent[:5]:
            send(dataplane, layout.POINT_N3_INGRESS, frame)
        keeper.collect()
        first = keeper.record("embb", "transit_latency_ms.uplink", 1_764_000_000.0)
        for frame in sent[5:]:
            send(dataplane, layout.POINT_N3_INGRESS, frame)
        keeper.collect()
        grown = keeper.record("embb", "transit_latency_ms.uplink", 1_764_000_000.0)
    finally:
        keeper.close()
    assert first is grown and grown is not None
    assert grown.frames == len(sent)
    path = grown.path
    assert path.name == "embb_transit_latency_ms-uplink_20251124T160000Z.pcapng"
    assert path.stat().st_size == grown.bytes

    wanted = ("frame.len", "frame.cap_len", "gtp.teid", "frame.comment", "frame.interface_name")
    fields = subprocess.run(
        ["tshark", "-r", str(path), "-T", "fields", "-E", "separator=;"]
        + [arg for name in wanted for arg in ("-e", name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    assert fields == [
        f"{len(f)};{min(len(f), SNAPLEN)};0x{EMBB_TEID:08x};"
        f"slice embb uplink teid 0x{EMBB_TEID:08x};n3_ingress"
        for f in sent
    ]

    out = subprocess.run(
        [sys.executable, "-m", "sauron", "replay", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["frames"] == len(sent)
    uplink_seen = report["slices"]["embb"]["uplink"]
    assert uplink_seen["packets"] == len(sent)
    # a replay runs what was captured: the heads (their lengths on the
    # wire are each frame's record, tshark's frame.len above)
    assert uplink_seen["bytes"] == sum(min(len(f), SNAPLEN) for f in sent)
