"""`sauron replay` decides each GTP-U frame's direction by the capture's
PFCP, then the PDU Session Container, then the addresses the containers
showed, else the kernel: a capture built the way an Open5GS UPF sends
downlink (no container) counts each direction exactly, and the report tells
how each frame was decided."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pfcp_frames
import pytest
from conftest import DATA
from frames import gtpu_raw, outer, pdu_session_container
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.packet import Raw

from sauron.abi import layout
from sauron.bpf.loader import DataPlane
from sauron.catalog import Catalog, parse_catalog
from sauron.commands.replay import ReplayOptions, format_report, replay_capture
from sauron.commands.replay_direction import PfcpTunnelEnds, read_gtpu_outer
from sauron.control.record import ControlSession, Tunnel

SMF, UPF_N4, UPF_N3, GNB = pfcp_frames.SMF, pfcp_frames.UPF_N4, pfcp_frames.UPF_N3, pfcp_frames.GNB
write_capture = pfcp_frames.write_capture
#: in none of the default catalog's UE subnets: the kernel alone would call
#: a downlink G-PDU without a container uplink
UE = "10.60.0.5"
SERVER = "198.51.100.9"
CP_SEID, UP_SEID = pfcp_frames.CP_SEID, pfcp_frames.UP_SEID
#: the UPF's uplink TEID and the gNB's downlink TEID, outside the catalog's
#: TEID ranges
UPF_TEID, GNB_TEID = 0x2A, 0x01
QFI = 1

UP, DOWN = "uplink", "downlink"


def open5gs_session(snssai: tuple[int, int | None], dnn: str) -> list[bytes]:
    return pfcp_frames.open5gs_session(snssai, dnn, UE, UPF_TEID, GNB_TEID, QFI)


def uplink_g_pdu(n: int, container: bool = True) -> bytes:
    """gNB to UPF, with the UL PDU Session Container a gNB always sends."""
    inner = IP(src=UE, dst=SERVER, id=n) / UDP(sport=40000, dport=5000) / Raw(b"up")
    ext = [(0x85, pdu_session_container(QFI, uplink=True))] if container else []
    return outer(gtpu_raw(UPF_TEID, payload=bytes(inner), extensions=ext), src=GNB, dst=UPF_N3)


def downlink_g_pdu(n: int) -> bytes:
    """UPF to gNB without a PDU Session Container, as Open5GS sends it."""
    inner = IP(src=SERVER, dst=UE, id=n) / UDP(sport=5000, dport=40000) / Raw(b"down")
    return outer(gtpu_raw(GNB_TEID, payload=bytes(inner)), src=UPF_N3, dst=GNB)


def echo(request: bool) -> bytes:
    """Path management: the gNB asks, the UPF answers (TEID 0, no payload)."""
    src, dst = (GNB, UPF_N3) if request else (UPF_N3, GNB)
    return outer(gtpu_raw(0, msg_type=1 if request else 2), src=src, dst=dst)


def decided(report: dict[str, Any]) -> dict[int, tuple[str, str]]:
    """Each counted frame's (direction, method), out of the report's runs."""
    out = {}
    for first, last, direction, method in report["direction"]["frames"]:
        for number in range(first, last + 1):
            out[number] = (direction, method)
    return out


def counts(**by_method: tuple[int, int]) -> dict[str, dict[str, int]]:
    methods = {name: {UP: 0, DOWN: 0} for name in ("pfcp", "container", "addresses", "kernel")}
    for name, (up, down) in by_method.items():
        methods[name] = {UP: up, DOWN: down}
    return methods


def packets(report: dict[str, Any], slice_name: str) -> tuple[int, int]:
    entry = report["slices"][slice_name]
    return entry[UP]["packets"], entry[DOWN]["packets"]


@pytest.mark.kernel
def test_open5gs_downlink_without_container_counts_as_downlink_by_pfcp(
    tmp_path: Path, recording_dataplane: DataPlane, catalog: Catalog
) -> None:
    # S-NSSAI 1-000001 is eMBB in the default catalog
    frames = open5gs_session((1, 0x000001), "internet")
    expected: dict[int, tuple[str, str]] = {}
    frames.append(echo(request=True))
    expected[len(frames)] = (UP, "pfcp")
    frames.append(echo(request=False))
    expected[len(frames)] = (DOWN, "pfcp")
    # a ping and its reply four times, then a download
    ups = downs = 0
    for n in range(4):
        frames.append(uplink_g_pdu(n))
        expected[len(frames)] = (UP, "pfcp")
        frames.append(downlink_g_pdu(n))
        expected[len(frames)] = (DOWN, "pfcp")
        ups, downs = ups + 1, downs + 1
    for n in range(4, 7):
        frames.append(downlink_g_pdu(n))
        expected[len(frames)] = (DOWN, "pfcp")
        downs += 1
    path = write_capture(tmp_path / "open5gs_n3_n4.pcap", frames)

    report = replay_capture(path, catalog, recording_dataplane)

    (session,) = report["sessions"]
    assert (session["slice"], session["ue_ip"]) == ("embb", UE)
    assert packets(report, "embb") == (ups, downs) == (4, 7)
    # the echo pair, slice-less, each its own way
    assert packets(report, "unclassified") == (1, 1)
    assert report["direction"]["decided_by"] == counts(pfcp=(ups + 1, downs + 1))
    assert decided(report) == expected
    assert "directions: 5 uplink, 8 downlink by PFCP tunnel ends" in format_report(report)

    # fixed by the user: every frame runs that way, and is told so
    fixed = replay_capture(
        path, catalog, recording_dataplane, ReplayOptions(direction_mode=layout.DIRMODE_DOWNLINK)
    )
    assert fixed["direction"]["decided_by"] == {"fixed": {UP: 0, DOWN: 13}}
    assert fixed["direction"]["frames"] == [[5, 17, DOWN, "fixed"]]
    assert packets(fixed, "embb") == (0, 11)


@pytest.mark.kernel
def test_only_pfcp_tells_a_downlink_without_container_from_a_ue_in_no_slice(
    tmp_path: Path, recording_dataplane: DataPlane
) -> None:
    """No container anywhere and a session in no slice (no UE route for the
    kernel to find): what PFCP says is all there is. A frame before the
    session is established falls to the kernel, which takes it uplink."""
    catalog = parse_catalog(
        {"slices": [{"name": "ims", "snssai": {"sst": 5}, "dnns": ["ims"]}]}, "test"
    )
    frames = [downlink_g_pdu(0), *open5gs_session((1, 0x000001), "internet")]
    frames += [downlink_g_pdu(n) for n in range(1, 7)]
    path = write_capture(tmp_path / "downlink_only.pcap", frames)

    report = replay_capture(path, catalog, recording_dataplane)

    (session,) = report["sessions"]
    assert session["slice"] is None
    assert packets(report, "unclassified") == (1, 6)
    assert report["direction"]["decided_by"] == counts(pfcp=(0, 6), kernel=(1, 0))
    assert report["direction"]["frames"] == [[1, 1, UP, "kernel"], [6, 11, DOWN, "pfcp"]]
    assert "1 uplink, 0 downlink by the kernel (UE subnet, else uplink)" in format_report(report)


@pytest.mark.kernel
def test_without_pfcp_the_addresses_the_containers_showed_decide(
    tmp_path: Path, recording_dataplane: DataPlane, catalog: Catalog
) -> None:
    """Uplink carries a container, so the UPF's N3 address is known from it;
    a downlink G-PDU from that address, without a container, is downlink."""
    frames = []
    for n in range(3):
        frames += [uplink_g_pdu(n), downlink_g_pdu(n), downlink_g_pdu(10 + n)]
    path = write_capture(tmp_path / "n3_only.pcap", frames)

    report = replay_capture(path, catalog, recording_dataplane)

    assert report["sessions"] == []
    assert packets(report, "unclassified") == (3, 6)
    assert report["direction"]["decided_by"] == counts(container=(3, 0), addresses=(0, 6))
    assert report["direction"]["frames"] == [
        run
        for first in (1, 4, 7)
        for run in ([first, first, UP, "container"], [first + 1, first + 2, DOWN, "addresses"])
    ]


@pytest.mark.kernel
def test_every_counted_frame_is_told_and_no_other(
    recording_dataplane: DataPlane, catalog: Catalog
) -> None:
    """GTP-U mixed with other traffic under VLAN and QinQ tags: the frames
    the report tells a direction of are the frames counted per slice."""
    report = replay_capture(DATA / "ndpi_qinq_gtpu_mixed.pcapng", catalog, recording_dataplane)
    told = decided(report)
    by_slices = sum(sum(packets(report, name)) for name in report["slices"])
    by_methods = sum(c[UP] + c[DOWN] for c in report["direction"]["decided_by"].values())
    assert len(told) == by_methods == by_slices == report["gtpu_frames"] > 0
    assert len(told) < report["frames"]


def test_the_header_reader_reads_what_the_kernel_parses() -> None:
    ul = uplink_g_pdu(1)
    header = read_gtpu_outer(ul)
    assert header is not None
    assert (str(header.source), str(header.destination)) == (GNB, UPF_N3)
    assert (header.message_type, header.teid, header.pdu_type) == (255, UPF_TEID, 1)
    dl = read_gtpu_outer(downlink_g_pdu(1))
    assert dl is not None and (dl.teid, dl.pdu_type) == (GNB_TEID, None)
    # two tags (QinQ) and an IPv6 outer header, a DL container behind
    # another extension header
    ext = [(0x40, b"\x00\x00"), (0x85, pdu_session_container(5, uplink=False))]
    tagged = outer(
        gtpu_raw(0x77, payload=b"\x45", extensions=ext),
        ipv6=True,
        vlans=(100, 200),
        src="2001:db8::7",
        dst="2001:db8::64",
    )
    assert Ether(tagged).haslayer(Dot1AD) and Ether(tagged).haslayer(Dot1Q)
    v6 = read_gtpu_outer(tagged)
    assert v6 is not None
    assert (str(v6.source), v6.teid, v6.pdu_type) == ("2001:db8::7", 0x77, 0)


def test_the_header_reader_leaves_what_it_cannot_read() -> None:
    frame = uplink_g_pdu(1)
    gtp_end = 14 + 20 + 8 + 8
    container_end = gtp_end + 4 + 4
    for cut in range(len(frame)):
        header = read_gtpu_outer(frame[:cut])
        if cut < gtp_end:
            assert header is None, cut
        else:
            assert header is not None and header.teid == UPF_TEID, cut
            assert header.pdu_type == (1 if cut >= container_end else None), cut
    # another UDP port, GTP' (protocol type 0), a later fragment, no IP
    assert read_gtpu_outer(outer(gtpu_raw(1), sport=2123, dport=2123)) is None
    gtp_prime = gtpu_raw(1, flags_override=0x20)
    assert read_gtpu_outer(outer(gtp_prime)) is None
    later = Ether(uplink_g_pdu(1))
    later[IP].frag = 8
    assert read_gtpu_outer(bytes(later)) is None
    assert read_gtpu_outer(bytes(Ether(type=0x0806) / Raw(bytes(28)))) is None
    assert read_gtpu_outer(bytes(Ether() / IPv6(nh=0) / Raw(bytes(40)))) is None


def test_pfcp_tunnel_ends_of_an_intermediate_upf() -> None:
    """An I-UPF with one GTP-U address on N3 and N9: its access F-TEID takes
    uplink, its core F-TEID downlink from the anchor, the anchor's far end
    uplink; a TEID of neither goes by address only where that address does
    not serve both sides. A deleted session's ends are forgotten."""
    iupf, anchor = "10.10.9.7", "10.10.9.8"
    session = ControlSession(
        source="pfcp",
        key=(SMF, 7),
        tunnels=[
            Tunnel(0x10, iupf, "access", True),
            Tunnel(0x20, iupf, "core", True),
            Tunnel(0x30, anchor, "core", False),
            Tunnel(0x40, GNB, "access", False),
        ],
    )
    ends = PfcpTunnelEnds()
    ends.upsert(session)

    def mode(teid: int, src: str, dst: str, msg_type: int = 255) -> int | None:
        header = read_gtpu_outer(outer(gtpu_raw(teid, msg_type=msg_type), src=src, dst=dst))
        assert header is not None
        return ends.mode_of(header)

    assert mode(0x10, GNB, iupf) == layout.DIRMODE_UPLINK
    assert mode(0x20, anchor, iupf) == layout.DIRMODE_DOWNLINK
    assert mode(0x30, iupf, anchor) == layout.DIRMODE_UPLINK
    assert mode(0x40, iupf, GNB) == layout.DIRMODE_DOWNLINK
    # the address alone: this UPF's serves both sides, the gNB's one
    assert mode(0x99, anchor, iupf) is None
    assert mode(0, GNB, "10.10.9.50", msg_type=1) == layout.DIRMODE_UPLINK
    assert mode(0, "10.10.9.50", GNB, msg_type=2) == layout.DIRMODE_DOWNLINK
    # non-G-PDU messages go by address only, even with a tunnel's TEID
    assert mode(0x20, anchor, iupf, msg_type=254) is None
    ends.remove(session)
    assert mode(0x10, GNB, iupf) is None
