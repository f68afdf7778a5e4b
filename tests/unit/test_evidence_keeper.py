"""The evidence keeper: frames of the watched slices kept in a bounded ring
each, a violation's pcapng written from the ring at first, then grown by
each interval's new frames up to its cap, the folder kept within its own
cap by removing the oldest files. The frames come from a stand-in for the
data path's ring (the ring itself is tests/kernel/test_evidence.py); the
files are read back by scapy's pcapng reader, a parser of its own."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from evidence_source import T0, Frames
from scapy.utils import RawPcapNgReader

from sauron.abi import layout
from sauron.diagnosis.evidence import EvidenceKeeper

IDS = {"embb": 1, "urllc": 2}
TARGET = "transit_latency_ms.p99.uplink"
T0_S = T0 / 1e9


def read_back(path: Path) -> list[tuple[bytes, int, object, object]]:
    """(data, wire length, interface name, comments) of each packet, by scapy."""
    with RawPcapNgReader(str(path)) as reader:
        return [(data, meta.wirelen, meta.ifname, meta.comments) for data, meta in reader]


def test_a_violation_file_starts_from_the_ring_and_grows(tmp_path: Path) -> None:
    source = Frames()
    keeper = EvidenceKeeper(source, lambda: IDS, tmp_path / "ev", ring_frames=5)
    keeper.watch({"urllc", "not-a-slice"})
    assert source.flagged == {2}
    source.send(2, 8)  # more than the ring holds: the oldest go
    source.send(1, 3)  # not watched: not copied at all
    keeper.collect()
    assert keeper.missed == 7
    file = keeper.record("urllc", TARGET, T0_S)
    assert file is not None and file.frames == 5
    assert file.path.name == "urllc_transit_latency_ms-p99-uplink_20251124T160000Z.pcapng"
    assert [d[0][0] for d in read_back(file.path)] == [3, 4, 5, 6, 7]

    source.send(2, 2, first=8)
    source.send(2, 3, first=20, direction=layout.DIR_DOWNLINK)  # not the target's direction
    keeper.collect()
    again = keeper.record("urllc", TARGET, T0_S)
    assert again is file and file.frames == 7
    packets = read_back(file.path)
    assert [p[0][0] for p in packets] == [3, 4, 5, 6, 7, 8, 9]
    name = layout.POINT_NAMES[layout.POINT_N3_INGRESS].encode()
    assert {(p[1], p[2]) for p in packets} == {(1400, name)}
    assert packets[0][3] == [b"slice urllc uplink teid 0x00020003"]
    assert file.bytes == file.path.stat().st_size
    # subscribers' addresses: the owner's alone
    assert stat.S_IMODE(os.stat(file.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "ev").st_mode) == 0o700
    assert keeper.files("urllc") == [file] and keeper.files("embb") == []
    # a target without a direction: both, as many as the ring still holds
    both = keeper.record("urllc", "max_loss_ratio.transit", T0_S)
    assert both is not None and [d[0][0] for d in read_back(both.path)] == [8, 9, 20, 21, 22]

    # the degradation is over: the capture stops and the ring is let go
    keeper.watch(())
    assert source.flagged == set()
    assert keeper.record("urllc", TARGET, T0_S) is file  # unchanged
    keeper.close()
    assert source.closed


def test_a_file_stops_at_its_cap_and_the_folder_drops_its_oldest(tmp_path: Path) -> None:
    source = Frames()
    keeper = EvidenceKeeper(
        source, lambda: IDS, tmp_path, ring_frames=100, max_file_bytes=2000, max_total_bytes=5000
    )
    keeper.watch({"urllc"})
    source.send(2, 40)
    keeper.collect()
    capped = keeper.record("urllc", TARGET, 1000.0)
    assert capped is not None and capped.capped
    assert 0 < capped.frames < 40 and capped.bytes <= 2000
    written = capped.frames
    source.send(2, 5, first=40)
    keeper.collect()
    assert keeper.record("urllc", TARGET, 1000.0) is capped and capped.frames == written
    assert len(read_back(capped.path)) == written

    later = []
    os.utime(capped.path, (1, 1))  # the oldest, by the clock the folder is pruned by
    for n in range(1, 4):  # three more violations: the folder holds two files of 2000 B
        source.send(2, 40, first=100 * n)
        keeper.collect()
        found = keeper.record("urllc", f"max_loss_ratio.transit.uplink{n}", 1000.0 + n)
        assert found is not None
        later.append(found)
        os.utime(found.path, (10 + n, 10 + n))
    on_disk = sorted(p.name for p in tmp_path.glob("*.pcapng"))
    assert sum(p.stat().st_size for p in tmp_path.glob("*.pcapng")) <= 5000
    assert capped.path.name not in on_disk  # the oldest went first
    assert later[-1].path.name in on_disk
    assert keeper.files("urllc")[0] is later[-1]


def test_frames_out_of_time_order_are_all_written_once(tmp_path: Path) -> None:
    """CPUs stamp their frames out of order, and the unix time of a frame
    moves with the clock: the keeper's own order decides what is new."""
    source = Frames()
    keeper = EvidenceKeeper(source, lambda: IDS, tmp_path)
    keeper.watch({"urllc"})
    source.send(2, 3)
    keeper.collect()
    file = keeper.record("urllc", TARGET, T0_S)
    assert file is not None and file.frames == 3
    source.send(2, 3)  # the same times again (a clock stepped back)
    keeper.collect()
    keeper.record("urllc", TARGET, T0_S)
    assert file.frames == 6 and len(read_back(file.path)) == 6
    keeper.record("urllc", TARGET, T0_S)
    assert file.frames == 6  # nothing new: nothing written twice


def test_pruning_leaves_files_it_did_not_write(tmp_path: Path) -> None:
    source = Frames()
    keeper = EvidenceKeeper(source, lambda: IDS, tmp_path, max_total_bytes=1)
    mine = tmp_path / "urllc_max_loss_ratio_20000101T000000Z.pcapng"
    theirs = tmp_path / "capture-of-the-night.pcapng"
    for path in (mine, theirs):
        path.write_bytes(bytes(100))
        os.utime(path, (1, 1))
    keeper.watch({"urllc"})
    source.send(2, 2)
    keeper.collect()
    found = keeper.record("urllc", TARGET, T0_S)
    assert found is not None and found.path.exists()
    assert not mine.exists() and theirs.exists()
