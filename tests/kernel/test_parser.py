"""GTP-U parser and classifier, in three stages: build a frame (scapy or by
hand), run it through the real program with BPF_PROG_TEST_RUN, check the
parse result and the maps."""

from __future__ import annotations

import ipaddress

import pytest
from frames import (
    gtpu_raw,
    inner_v4,
    inner_v6,
    outer,
    pdu_session_container,
    scapy_gtpu,
)
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from sauron.abi import layout
from sauron.bpf import libbpf
from sauron.bpf.loader import ETHERNET, UPF_DEVICE, DataPlane
from sauron.bpf.maps import read_counters
from sauron.bpf.session_table import SessionTable
from sauron.kpi.sessions import session_activity

pytestmark = [pytest.mark.kernel]

AN = {name: value for value, name in layout.ANOMALY_NAMES.items()}
MSG = {name: value for value, name in layout.MSG_KIND_NAMES.items()}
EMBB, URLLC, MMTC = 1, 2, 3
PDU_CONTAINER = 0x85


def run(
    dp: DataPlane,
    frame: bytes,
    point: int = layout.POINT_N3_INGRESS,
    link: str = ETHERNET,
    hook: str | None = None,
) -> layout.ParseResult:
    """Run stage: one frame through the program; it must pass it unchanged."""
    dp.bump_rules_generation()  # classify every frame afresh
    result = libbpf.test_run(dp.program_fd(point, link, hook), frame)
    assert result.retval == dp.pass_verdict(point, link, hook)
    assert result.data_out == frame, "the program must never alter the packet"
    return dp.last_result()


def ue(result: layout.ParseResult) -> str:
    ip = ipaddress.IPv6Address(bytes(result.ue_addr))
    return str(ip.ipv4_mapped or ip)


# --- message types and flags ---------------------------------------------------


@pytest.mark.parametrize(
    ("msg_type", "kind"),
    [
        (255, "g_pdu"),
        (1, "echo_request"),
        (2, "echo_response"),
        (254, "end_marker"),
        (26, "error_indication"),
        (31, "other"),
        (253, "other"),
    ],
)
def test_message_types(dataplane: DataPlane, msg_type: int, kind: str) -> None:
    payload = inner_v4() if msg_type == 255 else b"\x0e\x00"
    teid = 0x10001 if msg_type in (255, 254) else 0
    r = run(dataplane, outer(gtpu_raw(teid, msg_type=msg_type, payload=payload)))
    assert r.event == layout.constants()["SAURON_EV_GTPU"]
    assert r.msg_kind == MSG[kind]
    assert r.teid == teid
    counters = read_counters(dataplane)
    expected_slice = EMBB if teid else 0
    assert counters.slice(layout.POINT_N3_INGRESS, expected_slice, 0).msg[MSG[kind]] == 1


@pytest.mark.parametrize("seq", [None, 0, 0xFFFF])
@pytest.mark.parametrize("npdu", [None, 7])
@pytest.mark.parametrize("with_container", [False, True])
def test_flag_combinations(
    dataplane: DataPlane, seq: int | None, npdu: int | None, with_container: bool
) -> None:
    ext = [(PDU_CONTAINER, pdu_session_container(9, uplink=True))] if with_container else []
    frame = outer(
        gtpu_raw(0x20005, seq=seq, npdu=npdu, extensions=ext, payload=inner_v4(src="10.46.1.1"))
    )
    r = run(dataplane, frame)
    assert r.anomaly == 0
    assert r.teid == 0x20005 and r.slice_id == URLLC
    assert bool(r.flags & layout.RES_HAS_SEQ) == (seq is not None)
    if seq is not None:
        assert r.gtp_seq == seq
    assert r.qfi == (9 if with_container else layout.NO_QFI)
    assert r.inner_proto == 17 and (r.inner_sport, r.inner_dport) == (1111, 2222)


@pytest.mark.parametrize("chain_length", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("container_at", [0, 1, 3])
def test_extension_chains(dataplane: DataPlane, chain_length: int, container_at: int) -> None:
    ext: list[tuple[int, bytes]] = []
    for i in range(chain_length):
        if i == container_at:
            ext.append((PDU_CONTAINER, pdu_session_container(5, uplink=False)))
        else:
            # unknown extension types of growing length: walked by their length field
            ext.append((0x40 + i, bytes(range(2 + 4 * i))))
    frame = outer(
        gtpu_raw(
            0x99,
            extensions=ext,
            seq=1 if not ext else None,
            payload=inner_v4(src="198.51.100.9", dst="10.47.0.9"),
        )
    )
    r = run(dataplane, frame)
    assert r.anomaly == 0
    assert r.ext_headers == chain_length
    has_container = container_at < chain_length
    assert r.qfi == (5 if has_container else layout.NO_QFI)
    assert r.pdu_type == (0 if has_container else 255)
    # a DL container turns AUTO... the N3 ingress point is uplink: UE = inner source
    assert r.direction == layout.DIR_UPLINK
    assert r.inner_proto == 17


def test_ul_and_dl_pdu_types_set_direction_in_auto_mode(dataplane: DataPlane) -> None:
    dataplane.set_direction_mode(layout.POINT_N3_INGRESS, layout.DIRMODE_AUTO)
    ul = run(
        dataplane,
        scapy_gtpu(
            IP(src="10.45.0.2", dst="8.8.8.8") / UDP() / Raw(b"u"), 0x555, qfi=9, uplink=True
        ),
    )
    dl = run(
        dataplane,
        scapy_gtpu(
            IP(src="8.8.8.8", dst="10.45.0.2") / UDP() / Raw(b"d"), 0x556, qfi=9, uplink=False
        ),
    )
    assert (ul.pdu_type, ul.direction, ue(ul), ul.slice_id) == (
        1,
        layout.DIR_UPLINK,
        "10.45.0.2",
        EMBB,
    )
    assert (dl.pdu_type, dl.direction, ue(dl), dl.slice_id) == (
        0,
        layout.DIR_DOWNLINK,
        "10.45.0.2",
        EMBB,
    )


def test_auto_mode_without_container_uses_ue_subnet(dataplane: DataPlane) -> None:
    dataplane.set_direction_mode(layout.POINT_N3_INGRESS, layout.DIRMODE_AUTO)
    r = run(dataplane, outer(gtpu_raw(0x777, payload=inner_v4(src="203.0.113.5", dst="10.47.3.3"))))
    assert (r.direction, ue(r), r.slice_id) == (layout.DIR_DOWNLINK, "10.47.3.3", MMTC)


@pytest.mark.parametrize("outer_v6", [False, True])
@pytest.mark.parametrize("inner", ["v4", "v6"])
@pytest.mark.parametrize("vlans", [(), (100,), (3243, 10)])
def test_ip_versions_and_vlans(
    dataplane: DataPlane, outer_v6: bool, inner: str, vlans: tuple[int, ...]
) -> None:
    payload = inner_v4(src="10.46.0.8") if inner == "v4" else inner_v6(src="2001:db8:46::8")
    r = run(dataplane, outer(gtpu_raw(0x1234, payload=payload), ipv6=outer_v6, vlans=vlans))
    assert r.anomaly == 0
    assert r.slice_id == URLLC
    assert ue(r) == ("10.46.0.8" if inner == "v4" else "2001:db8:46::8")


def test_classification_order_teid_then_ue_then_qfi(dataplane: DataPlane, catalog) -> None:
    # TEID range of mmtc wins over a UE address of embb
    r = run(dataplane, outer(gtpu_raw(0x30001, payload=inner_v4(src="10.45.9.9"))))
    assert r.slice_id == MMTC
    # unknown TEID: the UE subnet decides
    r = run(dataplane, outer(gtpu_raw(0x7777777, payload=inner_v4(src="10.45.9.9"))))
    assert r.slice_id == EMBB
    # neither: a QFI rule decides, else unclassified
    dataplane.table("qfi_slice")[dataplane.table("qfi_slice").Key(9)] = dataplane.table(
        "qfi_slice"
    ).Leaf(URLLC)
    ext = [(PDU_CONTAINER, pdu_session_container(9, uplink=True))]
    r = run(
        dataplane, outer(gtpu_raw(0x7777777, extensions=ext, payload=inner_v4(src="172.16.0.1")))
    )
    assert r.slice_id == URLLC
    r = run(dataplane, outer(gtpu_raw(0x7777777, payload=inner_v4(src="172.16.0.1"))))
    assert r.slice_id == 0


def test_cached_session_slice_follows_rule_changes(dataplane: DataPlane) -> None:
    frame = outer(gtpu_raw(0x4242, payload=inner_v4(src="10.45.1.1")))
    fd = dataplane.program_fd(layout.POINT_N3_INGRESS)
    for _ in range(3):
        libbpf.test_run(fd, frame)
    assert dataplane.last_result().slice_id == EMBB
    dataplane.table("teid_slice")[dataplane.table("teid_slice").Key(0x4242)] = dataplane.table(
        "teid_slice"
    ).Leaf(MMTC)
    libbpf.test_run(fd, frame)
    assert dataplane.last_result().slice_id == EMBB, "cached until the rules generation moves"
    dataplane.bump_rules_generation()
    libbpf.test_run(fd, frame)
    assert dataplane.last_result().slice_id == MMTC
    c = read_counters(dataplane)
    assert c.slice(layout.POINT_N3_INGRESS, EMBB, 0).packets == 4
    assert c.slice(layout.POINT_N3_INGRESS, MMTC, 0).packets == 1
    (session,) = [s for s in c.teids if c.teid_of(s) == 0x4242]
    assert session.packets[0] == 5 and session.slice_id == MMTC


def test_counts_bytes_qfi_and_teids(dataplane: DataPlane) -> None:
    ext = [(PDU_CONTAINER, pdu_session_container(7, uplink=True))]
    frames = [
        outer(gtpu_raw(0x10002, extensions=ext, payload=inner_v4(size=s))) for s in (10, 100, 1000)
    ]
    for f in frames:
        run(dataplane, f)
    c = read_counters(dataplane)
    st = c.slice(layout.POINT_N3_INGRESS, EMBB, layout.DIR_UPLINK)
    assert st.packets == 3
    assert st.bytes == sum(len(f) for f in frames)
    assert st.inner_bytes == sum(20 + 8 + s for s in (10, 100, 1000))
    assert c.qfi(layout.POINT_N3_INGRESS, EMBB, 7, layout.DIR_UPLINK).packets == 3
    assert {c.teid_of(s): s.packets[0] for s in c.teids} == {0x10002: 3}


def test_n6_plain_ip_both_directions(dataplane: DataPlane) -> None:
    dl = bytes(
        Ether()
        / IP(src="198.51.100.2", dst="10.46.0.3")
        / UDP(sport=53, dport=999)
        / Raw(bytes(40))
    )
    ul = bytes(
        Ether()
        / IP(src="10.47.0.4", dst="198.51.100.2")
        / UDP(sport=999, dport=53)
        / Raw(bytes(40))
    )
    r = run(dataplane, dl, layout.POINT_N6_INGRESS)
    assert (r.slice_id, r.direction, ue(r), r.msg_kind) == (
        URLLC,
        layout.DIR_DOWNLINK,
        "10.46.0.3",
        MSG["not_gtpu"],
    )
    r = run(dataplane, ul, layout.POINT_N6_EGRESS)
    assert (r.slice_id, r.direction, ue(r)) == (MMTC, layout.DIR_UPLINK, "10.47.0.4")
    c = read_counters(dataplane)
    assert c.slice(layout.POINT_N6_INGRESS, URLLC, layout.DIR_DOWNLINK).packets == 1
    assert c.slice(layout.POINT_N6_EGRESS, MMTC, layout.DIR_UPLINK).packets == 1


def test_upf_device_programs_start_at_ip(dataplane: DataPlane) -> None:
    """The UPF's TUN device: no link-layer header, the version nibble names
    the protocol; its XDP side is N6 egress (uplink), its TC side N6
    ingress (downlink)."""
    ev = layout.constants()
    ul = bytes(IP(src="10.47.0.4", dst="198.51.100.2") / UDP(sport=999, dport=53) / Raw(bytes(40)))
    r = run(dataplane, ul, layout.POINT_N6_EGRESS, UPF_DEVICE)
    assert (r.event, r.slice_id, r.direction, ue(r), r.inner_sport, r.inner_dport) == (
        ev["SAURON_EV_IP"],
        MMTC,
        layout.DIR_UPLINK,
        "10.47.0.4",
        999,
        53,
    )
    dl = bytes(IPv6(src="2001:db8::1", dst="2001:db8:46::9") / UDP(sport=53, dport=999))
    r = run(dataplane, dl, layout.POINT_N6_INGRESS, UPF_DEVICE)
    assert (r.event, r.slice_id, r.direction, ue(r), r.anomaly) == (
        ev["SAURON_EV_IP"],
        URLLC,
        layout.DIR_DOWNLINK,
        "2001:db8:46::9",
        0,
    )
    c = read_counters(dataplane)
    assert c.slice(layout.POINT_N6_EGRESS, MMTC, layout.DIR_UPLINK).bytes == len(ul)
    assert c.slice(layout.POINT_N6_INGRESS, URLLC, layout.DIR_DOWNLINK).bytes == len(dl)
    # an Ethernet frame is not IP here (its first nibble is the MAC's), and an
    # IPv4 header cut short is malformed, not skipped
    r = run(dataplane, bytes(Ether() / ul), layout.POINT_N6_EGRESS, UPF_DEVICE)
    assert (r.event, r.anomaly) == (ev["SAURON_EV_NOT_IP"], 0)
    r = run(dataplane, ul[:16], layout.POINT_N6_EGRESS, UPF_DEVICE)
    assert (r.event, r.anomaly) == (ev["SAURON_EV_NOT_IP"], AN["ipv4_truncated"])


def test_tc_egress_program_parses_like_xdp(dataplane: DataPlane) -> None:
    frame = outer(gtpu_raw(0x20009, payload=inner_v4(dst="10.46.7.7", src="1.1.1.1")))
    r = run(dataplane, frame, layout.POINT_N3_EGRESS)
    assert (r.slice_id, r.direction, ue(r)) == (URLLC, layout.DIR_DOWNLINK, "10.46.7.7")


def test_not_gtpu_traffic(dataplane: DataPlane) -> None:
    arp = bytes.fromhex("ffffffffffff0200000000010806") + bytes(28)
    r = run(dataplane, arp)
    assert r.event == layout.constants()["SAURON_EV_NOT_IP"] and r.anomaly == 0
    other_udp = bytes(Ether() / IP() / UDP(sport=5000, dport=53) / Raw(b"x" * 20))
    r = run(dataplane, other_udp)
    assert r.event == layout.constants()["SAURON_EV_IP_NOT_GTPU"] and r.anomaly == 0
    dns_on_2152 = bytes(
        Ether()
        / IP()
        / UDP(sport=53, dport=2152)
        / Raw(bytes.fromhex("abcd0100000100000000000003777777"))
    )
    r = run(dataplane, dns_on_2152)
    assert r.event == layout.constants()["SAURON_EV_IP_NOT_GTPU"] and r.anomaly == AN["gtpu_not_v1"]


def test_later_fragment_is_counted_as_fragment(dataplane: DataPlane) -> None:
    frag = bytes(Ether() / IP(frag=100, proto=17) / Raw(bytes(40)))
    r = run(dataplane, frag)
    assert r.event == layout.constants()["SAURON_EV_OUTER_FRAGMENT"]
    first = bytes(
        Ether()
        / IP(flags="MF")
        / UDP(sport=2152, dport=2152, len=2000)
        / Raw(gtpu_raw(0x10001, payload=inner_v4(), length=1984))
    )
    r = run(dataplane, first)
    assert r.msg_kind == MSG["g_pdu"] and r.teid == 0x10001
    assert r.anomaly == AN["outer_first_fragment"]


# --- malformed frames: counted by reason, never dropped, never altered ---------


def _ip_udp(payload: bytes, **ip: object) -> bytes:
    return bytes(Ether() / IP(**ip) / UDP(sport=2152, dport=2152) / Raw(payload))


def cut(frame: bytes, length: int) -> bytes:
    """The frame cut short with its IPv4 and UDP length fields agreeing, so
    the anomaly seen is the one of the header that the cut runs through."""
    out = bytearray(frame[:length])
    if len(out) >= 14 + 4:
        out[16:18] = (length - 14).to_bytes(2, "big")
    if len(out) >= 14 + 20 + 6:
        out[38:40] = (length - 34).to_bytes(2, "big")
    return bytes(out)


GOOD = outer(
    gtpu_raw(
        0x10001, extensions=[(PDU_CONTAINER, pdu_session_container(9, True))], payload=inner_v4()
    )
)
GTP_OFFSET = 14 + 20 + 8

MALFORMED = {
    "vlan_truncated": bytes.fromhex("0200000000020200000000018100") + b"\x00",
    "vlan_too_deep": bytes.fromhex("02000000000202000000000188a8000a8100000b8100000c0800")
    + bytes(40),
    "ipv4_truncated": GOOD[: 14 + 12],
    "ipv4_bad_ihl": GOOD[:14] + bytes([0x43]) + GOOD[15:],
    "ipv4_bad_total_length": GOOD[:16] + (10).to_bytes(2, "big") + GOOD[18:],
    "ipv6_truncated": outer(gtpu_raw(1, payload=inner_v4()), ipv6=True)[: 14 + 30],
    "ipv6_ext_too_many": bytes(
        Ether()
        / IPv6(nh=60)
        / Raw(b"\x3c\x00" + bytes(6))
        / Raw(b"\x3c\x00" + bytes(6))
        / Raw(b"\x3c\x00" + bytes(6))
        / Raw(b"\x3c\x00" + bytes(6))
        / Raw(b"\x3c\x00" + bytes(6))
        / Raw(bytes(16))
    ),
    "udp_truncated": cut(GOOD, 14 + 20 + 4),
    "udp_bad_length": GOOD[:38] + (4000).to_bytes(2, "big") + GOOD[40:],
    "gtpu_truncated": cut(GOOD, GTP_OFFSET + 5),
    "gtpu_not_v1": outer(gtpu_raw(1, flags_override=0x50, payload=inner_v4())),
    "gtpu_opt_truncated": cut(outer(gtpu_raw(0x10001, seq=5, length=2)), GTP_OFFSET + 10),
    "gtpu_ext_truncated": cut(
        outer(gtpu_raw(0x10001, extensions=[(0x40, bytes(10))], length=6)), GTP_OFFSET + 14
    ),
    "gtpu_ext_zero_length": (lambda f: f[: GTP_OFFSET + 12] + b"\x00" + f[GTP_OFFSET + 13 :])(
        outer(gtpu_raw(0x10001, extensions=[(PDU_CONTAINER, b"\x10\x09")], payload=inner_v4()))
    ),
    "gtpu_ext_chain_too_long": outer(
        gtpu_raw(
            0x10001,
            extensions=[(0x40, b"\x00\x00")] * (layout.MAX_GTPU_EXT_HEADERS + 1),
            payload=inner_v4(),
        )
    ),
    "gtpu_pdu_container_bad": outer(
        gtpu_raw(0x10001, extensions=[(PDU_CONTAINER, b"\x20\x09")], payload=inner_v4())
    ),
    "gtpu_length_mismatch": outer(gtpu_raw(0x10001, payload=inner_v4(), length=5)),
    "inner_not_ip": outer(gtpu_raw(0x10001, payload=b"\x00" * 40)),
    "inner_truncated": outer(gtpu_raw(0x10001, payload=inner_v4()[:30])),
    "inner_l4_truncated": outer(
        gtpu_raw(
            0x10001,
            payload=bytes(IP(src="10.45.0.1", dst="1.1.1.1", proto=17, len=22)) + b"\x00\x01",
        )
    ),
    "ip_truncated": GOOD[:-5],
}


@pytest.mark.parametrize("reason", sorted(MALFORMED))
def test_malformed_frames(dataplane: DataPlane, reason: str) -> None:
    frame = MALFORMED[reason]
    r = run(dataplane, frame)
    assert layout.ANOMALY_NAMES.get(r.anomaly) == reason
    c = read_counters(dataplane)
    assert c.event(layout.POINT_N3_INGRESS, AN[reason]) == 1
    assert c.event(layout.POINT_N3_INGRESS, layout.constants()["SAURON_EV_FRAMES"]) == 1


def test_malformed_after_gtp_header_still_counts_under_teid(dataplane: DataPlane) -> None:
    r = run(dataplane, MALFORMED["inner_not_ip"])
    assert r.msg_kind == MSG["g_pdu"] and r.teid == 0x10001 and r.slice_id == EMBB
    c = read_counters(dataplane)
    st = c.slice(layout.POINT_N3_INGRESS, EMBB, 0)
    assert st.packets == 1 and st.malformed == 1
    assert {c.teid_of(s) for s in c.teids} == {0x10001}


def _slot_index(teid: int) -> int:
    """The C side's slot hash (account.h), repeated here to aim collisions."""
    return ((teid * 2654435761) & 0xFFFFFFFF) >> (32 - layout.TEID_SLOT_BITS)


def test_colliding_teids_evict_each_other_without_losing_counts(dataplane: DataPlane) -> None:
    first = 0x10001
    second = next(
        t for t in range(first + 1, first + 1_000_000) if _slot_index(t) == _slot_index(first)
    )
    frames = {
        first: outer(gtpu_raw(first, payload=inner_v4(src="10.45.0.1"))),
        second: outer(gtpu_raw(second, payload=inner_v4(src="10.46.0.2"))),
    }
    fd = dataplane.program_fd(layout.POINT_N3_INGRESS)
    pattern = [first, first, second, first, second, second, second, first]
    for teid in pattern:
        libbpf.test_run(fd, frames[teid])
    c = read_counters(dataplane)
    sessions = {c.teid_of(s): s for s in c.teids}
    for teid in (first, second):
        n = pattern.count(teid)
        assert sessions[teid].packets == [n, 0]
        assert sessions[teid].bytes == [n * len(frames[teid]), 0]
    assert sessions[first].slice_id == EMBB  # TEID range
    assert sessions[second].slice_id == (EMBB if second <= 0x1FFFF else URLLC)
    st = c.slice(layout.POINT_N3_INGRESS, EMBB, 0)
    assert st.packets == sum(1 for t in pattern if sessions[t].slice_id == EMBB)


def test_active_sessions_per_interval(dataplane: DataPlane) -> None:
    fd = dataplane.program_fd(layout.POINT_N3_INGRESS)
    n6 = dataplane.program_fd(layout.POINT_N6_INGRESS)
    for teid, src in ((0x10001, "10.45.0.1"), (0x10002, "10.45.0.2"), (0x20001, "10.46.0.1")):
        libbpf.test_run(fd, outer(gtpu_raw(teid, payload=inner_v4(src=src))))
    first = read_counters(dataplane)
    assert session_activity(SessionTable.empty(4), first.teids, by_teid=True).active == {
        EMBB: 2,
        URLLC: 1,
    }
    libbpf.test_run(fd, outer(gtpu_raw(0x10002, payload=inner_v4(src="10.45.0.2"))))
    for dst in ("10.47.0.1", "10.47.0.2", "10.47.0.3"):
        libbpf.test_run(n6, bytes(Ether() / IP(src="1.1.1.1", dst=dst) / UDP() / Raw(b"x")))
    second = read_counters(dataplane)
    assert session_activity(first.teids, second.teids, by_teid=True).active == {EMBB: 1}
    assert session_activity(first.ues, second.ues, by_teid=False).active == {MMTC: 3}
    assert session_activity(second.teids, read_counters(dataplane).teids, by_teid=True).active == {}
    (top,) = session_activity(first.teids, second.teids, by_teid=True).top[EMBB]
    assert (top.teid, top.ue_address, top.uplink_packets, top.downlink_packets) == (
        0x10002,
        "10.45.0.2",
        1,
        0,
    )
    ues = session_activity(first.ues, second.ues, by_teid=False).top[MMTC]
    assert sorted(u.ue_address for u in ues) == ["10.47.0.1", "10.47.0.2", "10.47.0.3"]
    assert all(u.downlink_packets == 1 and u.teid is None for u in ues)
