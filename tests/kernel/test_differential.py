"""Differential test: thousands of random GTP-U frames, valid and corrupted,
through the kernel program and the Python reference parser; both must agree
on category, anomaly, TEID, message kind, QFI, PDU type, extension count,
sequence number, inner protocol and ports, UE address, direction and slice;
and the N3 ingress point's XDP and TC programs agree on every field."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from reference_parser import ReferenceClassifier, expected_result

from sauron.abi import layout
from sauron.bpf import libbpf
from sauron.bpf.loader import TC, XDP, DataPlane
from sauron.bpf.rules import program_catalog
from sauron.bpf.security import set_checks
from sauron.catalog import parse_catalog
from sauron.commands.replay import TEST_RUN_MAX_FRAME

pytestmark = [pytest.mark.kernel]

# Slices with every kind of rule: exact TEIDs, TEID ranges, IPv4/IPv6 UE
# subnets and QFIs, so the classifier's whole order is exercised.
RULES = parse_catalog(
    {
        "slices": [
            {
                "name": "embb",
                "snssai": {"sst": 1},
                "ue_subnets": ["10.45.0.0/16", "2001:db8:45::/48"],
                "teid_ranges": [{"first": 0x10000, "last": 0x1FFFF}],
            },
            {
                "name": "urllc",
                "snssai": {"sst": 2},
                "ue_subnets": ["10.46.0.0/16"],
                "teids": [7, 8, 9],
            },
            {"name": "mmtc", "snssai": {"sst": 3}, "ue_subnets": ["10.47.0.0/24"], "qfis": [5, 6]},
        ]
    },
    "differential rules",
)

TEIDS = st.one_of(
    st.sampled_from([0, 7, 9, 0x10000, 0x1ABCD, 0x1FFFF, 0x20000]), st.integers(0, 0xFFFFFFFF)
)
UE4 = st.sampled_from(
    ["10.45.3.4", "10.46.0.1", "10.47.0.200", "10.47.1.1", "198.51.100.7", "8.8.8.8"]
)
UE6 = st.sampled_from(["2001:db8:45::9", "2001:db8:46::1", "2001:db8::5"])
MSG_TYPES = st.sampled_from([255, 255, 255, 1, 2, 26, 254, 31])


def _csum_free_ipv4(
    src: str, dst: str, proto: int, payload: bytes, options: bytes = b"", frag: int = 0
) -> bytes:
    ihl = 5 + len(options) // 4
    total = ihl * 4 + len(payload)
    head = struct.pack(
        "!BBHHHBBH4s4s",
        0x40 | ihl,
        0,
        total,
        1,
        frag,
        64,
        proto,
        0,
        bytes(map(int, src.split("."))),
        bytes(map(int, dst.split("."))),
    )
    return head + options + payload


def _ipv6(src: str, dst: str, nxt: int, payload: bytes) -> bytes:
    import ipaddress

    return (
        struct.pack("!IHBB", 0x60000000, len(payload), nxt, 64)
        + ipaddress.IPv6Address(src).packed
        + ipaddress.IPv6Address(dst).packed
        + payload
    )


@st.composite
def inner_packets(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["v4", "v4", "v6", "junk", "empty", "short_l4"]))
    proto = draw(st.sampled_from([17, 6, 1, 132]))
    l4 = struct.pack("!HH", draw(st.integers(0, 65535)), draw(st.integers(0, 65535))) + bytes(
        draw(st.integers(4, 40))
    )
    if kind == "v4":
        return _csum_free_ipv4(draw(UE4), draw(UE4), proto, l4)
    if kind == "v6":
        return _ipv6(draw(UE6), draw(UE6), proto, l4)
    if kind == "short_l4":
        return _csum_free_ipv4(draw(UE4), draw(UE4), proto, l4[:2])
    if kind == "junk":
        return draw(st.binary(min_size=1, max_size=40))
    return b""


@st.composite
def extension_chains(draw: st.DrawFn) -> list[tuple[int, bytes]]:
    chain: list[tuple[int, bytes]] = []
    for _ in range(
        draw(
            st.sampled_from(
                [0, 1, 2, 3, 4, 5, layout.MAX_GTPU_EXT_HEADERS + 1, layout.MAX_GTPU_EXT_HEADERS + 1]
            )
        )
    ):
        if draw(st.integers(0, 23)) == 0:
            chain.append((0x40, b""))  # encodes as a zero length octet
        elif draw(st.booleans()):
            pdu_type = draw(st.sampled_from([0, 1, 1, 1, 0, 2]))
            chain.append((0x85, bytes([pdu_type << 4, draw(st.integers(0, 255))])))
        else:
            units = draw(st.integers(1, 3))
            chain.append((draw(st.sampled_from([0x40, 0x81, 0xC0, 0x03])), bytes(units * 4 - 2)))
    return chain


@st.composite
def gtpu_messages(draw: st.DrawFn) -> bytes:
    msg_type = draw(MSG_TYPES)
    chain = draw(extension_chains())
    seq = draw(st.one_of(st.none(), st.integers(0, 0xFFFF)))
    npdu = draw(st.one_of(st.none(), st.integers(0, 255)))
    payload = draw(inner_packets()) if msg_type == 255 else bytes(draw(st.integers(0, 12)))
    version_pt = draw(st.sampled_from([0x30] * 12 + [0x20, 0x50]))  # GTP' and GTPv2 now and then
    flags = (
        version_pt
        | (0x04 if chain else 0)
        | (0x02 if seq is not None else 0)
        | (0x01 if npdu is not None else 0)
    )
    body = b""
    if flags & 0x07:
        body = struct.pack("!HBB", seq or 0, npdu or 0, chain[0][0] if chain else 0)
        for i, (_, content) in enumerate(chain):
            nxt = chain[i + 1][0] if i + 1 < len(chain) else 0
            units = (len(content) + 2) // 4 if content else 0
            body += bytes([units]) + content + bytes([nxt])
    body += payload
    length = len(body)
    if draw(st.integers(0, 9)) == 0:
        length = (length + draw(st.integers(1, 300))) & 0xFFFF  # a lying length field
    return struct.pack("!BBHI", flags, msg_type, length, draw(TEIDS)) + body


def cut_gtpu(gtp: bytes, length: int) -> bytes:
    """GTP-U cut short with its length field telling the truth, so the
    headers around it agree and the cut shows where it falls."""
    cut = bytearray(gtp[:length])
    if len(cut) >= 8:
        cut[2:4] = (len(cut) - 8).to_bytes(2, "big")
    return bytes(cut)


def _g_pdu(payload: bytes) -> bytes:
    """An Ethernet/IPv4/UDP 2152 G-PDU of TEID 0x10001 around `payload`."""
    return (
        bytes.fromhex("020000000002020000000001")
        + b"\x08\x00"
        + _csum_free_ipv4(
            "192.0.2.1",
            "192.0.2.2",
            17,
            struct.pack("!HHHH", 2152, 2152, 8 + 8 + len(payload), 0)
            + struct.pack("!BBHI", 0x30, 255, len(payload), 0x10001)
            + payload,
        )
    )


#: a G-PDU whose inner IPv4 packet says UDP and ends with its own header:
#: drawn frames reach it only now and then (4 000 of them did not, run after
#: the rest of the suite), and this one always
_G_PDU_INNER_L4_CUT = _g_pdu(_csum_free_ipv4("10.45.0.1", "198.51.100.1", 17, b""))

#: a well-formed G-PDU whose payload is no IP packet (first nibble 0): the
#: drawn frames reach it often, and this one always
_G_PDU_OF_JUNK = _g_pdu(bytes(20))


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    gtp = draw(gtpu_messages())
    if draw(st.integers(0, 3)) == 0:
        gtp = cut_gtpu(gtp, draw(st.integers(0, len(gtp))))
    port_pair = draw(st.sampled_from([(2152, 2152), (2152, 40000), (40000, 2152), (53, 53)]))
    udp_length = len(gtp) + 8
    if draw(st.integers(0, 9)) == 0:
        udp_length = draw(st.sampled_from([0, 7, udp_length + 1, 0xFFFF]))  # a lying UDP length
    udp = struct.pack("!HHHH", *port_pair, udp_length, 0) + gtp
    if draw(st.booleans()):
        options = bytes(draw(st.sampled_from([0, 4, 8])))
        if draw(st.integers(0, 7)) == 0:
            udp = udp[: draw(st.integers(0, 7))]  # an IP datagram too short for UDP
        frag = draw(st.sampled_from([0, 0, 0, 0x2000, 0x0010]))
        ip = _csum_free_ipv4("192.0.2.1", "192.0.2.2", 17, udp, options, frag)
        ethertype = 0x0800
    else:
        exts = b""
        nxt = 17
        for _ in range(draw(st.sampled_from([0, 1, 2, layout.MAX_IPV6_EXT_HEADERS + 1]))):
            exts = bytes([nxt, 0]) + bytes(6) + exts
            nxt = 60
        ip = _ipv6("2001:db8::1", "2001:db8::2", nxt, exts + udp)
        ethertype = 0x86DD
    tags = b""
    for tpid in draw(st.lists(st.sampled_from([0x8100, 0x88A8]), max_size=3)):
        tags += struct.pack("!HH", tpid, draw(st.integers(0, 4095)))
    frame = bytes.fromhex("020000000002020000000001") + tags + struct.pack("!H", ethertype) + ip
    return draw(corruptions(frame))


@st.composite
def corruptions(draw: st.DrawFn, frame: bytes) -> bytes:
    """Most frames stay valid; the rest are cut short and/or get bytes
    overwritten anywhere past the MAC addresses."""
    choice = draw(st.sampled_from(["none", "none", "cut", "poke", "both"]))
    data = bytearray(frame)
    if choice in ("poke", "both"):
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(12, len(data) - 1))
            data[at] = draw(st.integers(0, 255))
    if choice in ("cut", "both"):
        data = data[: draw(st.integers(14, len(data)))]
    return bytes(data)


@pytest.fixture(scope="module")
def rules_dataplane(recording_dataplane: DataPlane) -> DataPlane:
    """The parser alone: the security checks off (a TEID's slot that
    vouched for a frame on one hook spares it the checks on the other, and
    their record of the frame would differ)."""
    recording_dataplane.reset_counters()
    program_catalog(recording_dataplane, RULES)
    set_checks(recording_dataplane, False)
    return recording_dataplane


ETH_HLEN = 14
#: the shortest frame of an ethertype that the test run of a socket buffer
#: takes: it reads the IP header's addresses, so refuses a frame cut inside
#: it (the stack's TC hook, running before IP validation, sees such frames)
SKB_TEST_RUN_SHORTEST = {0x0800: ETH_HLEN + 20, 0x86DD: ETH_HLEN + 40}


def skb_test_run_takes(frame: bytes) -> bool:
    """Whether BPF_PROG_TEST_RUN runs a TC program on this frame: one that
    holds an Ethernet header, fits a page with its overheads (XDP's test run
    takes more) and is not cut inside its IP header."""
    if not ETH_HLEN <= len(frame) <= TEST_RUN_MAX_FRAME:
        return False
    ethertype = int.from_bytes(frame[12:14], "big")
    return len(frame) >= SKB_TEST_RUN_SHORTEST.get(ethertype, ETH_HLEN)


def check_agreement(dp: DataPlane, frame: bytes, auto: bool) -> layout.ParseResult:
    dp.set_direction_mode(
        layout.POINT_N3_INGRESS, layout.DIRMODE_AUTO if auto else layout.DIRMODE_POINT
    )
    dp.bump_rules_generation()
    result = libbpf.test_run(dp.program_fd(layout.POINT_N3_INGRESS, hook=XDP), frame)
    assert result.retval == libbpf.XDP_PASS and result.data_out == frame
    got = dp.last_result()
    # the TC ingress program, the other hook for the same point, parses
    # alike on every frame the kernel's test run takes as a socket buffer
    if skb_test_run_takes(frame):
        result = libbpf.test_run(dp.program_fd(layout.POINT_N3_INGRESS, hook=TC), frame)
        assert result.retval == libbpf.TC_ACT_UNSPEC and result.data_out == frame
        assert bytes(dp.last_result()) == bytes(got), frame.hex()
    want = expected_result(frame, ReferenceClassifier(RULES), auto)
    kernel = {
        "event": layout.EVENT_NAMES.get(got.event, got.event),
        "anomaly": layout.ANOMALY_NAMES.get(got.anomaly, got.anomaly),
        "teid": got.teid,
        "slice": got.slice_id,
        "direction": got.direction,
        "msg_kind": got.msg_kind,
        "qfi": got.qfi,
        "pdu_type": got.pdu_type,
        "ext_headers": got.ext_headers,
        "seq": got.gtp_seq if got.flags & layout.RES_HAS_SEQ else None,
        "inner": (got.inner_proto, got.inner_sport, got.inner_dport),
        "ue": bytes(got.ue_addr),
    }
    reference = {
        "event": layout.EVENT_NAMES.get(want.event, want.event),
        "anomaly": layout.ANOMALY_NAMES.get(want.anomaly, want.anomaly),
        "teid": want.teid,
        "slice": want.slice_id,
        "direction": want.direction,
        "msg_kind": want.msg_kind,
        "qfi": want.qfi,
        "pdu_type": want.pdu_type,
        "ext_headers": want.ext_headers,
        "seq": want.gtp_seq if want.has_seq else None,
        "inner": (want.inner_proto, want.inner_sport, want.inner_dport),
        "ue": want.ue_addr,
    }
    assert kernel == reference, frame.hex()
    return got


def test_kernel_and_reference_agree(rules_dataplane: DataPlane) -> None:
    """Every generated frame agrees; and the frames compared reach every
    category a GTP-U port leads to, every slice, both directions, and the
    anomaly reasons the parser can meet past the Ethernet header."""
    events: set[str] = set()
    anomalies: set[str] = set()
    slices: set[int] = set()
    directions: set[int] = set()
    compared = by_tc = 0

    @settings(
        max_examples=4000,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(frame=frames(), auto=st.booleans())
    @example(frame=_G_PDU_OF_JUNK, auto=False)
    @example(frame=_G_PDU_INNER_L4_CUT, auto=False)
    def agree(frame: bytes, auto: bool) -> None:
        nonlocal compared, by_tc
        got = check_agreement(rules_dataplane, frame, auto)
        compared += 1
        by_tc += skb_test_run_takes(frame)
        events.add(layout.EVENT_NAMES[got.event])
        if got.anomaly:
            anomalies.add(layout.ANOMALY_NAMES[got.anomaly])
        if got.event == layout.constants()["SAURON_EV_GTPU"]:
            slices.add(got.slice_id)
            directions.add(got.direction)

    agree()
    assert compared >= 4000
    assert by_tc >= compared * 0.9, "the TC ingress program saw too few of the frames"
    assert {"gtpu", "ip_not_gtpu", "not_ip", "outer_fragment"} <= events
    assert slices == {0, 1, 2, 3}
    assert directions == {layout.DIR_UPLINK, layout.DIR_DOWNLINK}
    must = {
        "gtpu_not_v1",
        "gtpu_ext_zero_length",
        "gtpu_ext_chain_too_long",
        "gtpu_opt_truncated",
        "gtpu_ext_truncated",
        "gtpu_pdu_container_bad",
        "gtpu_length_mismatch",
        "inner_not_ip",
        "inner_truncated",
        "inner_l4_truncated",
        "udp_truncated",
        "udp_bad_length",
        "ipv6_ext_too_many",
        "vlan_too_deep",
        "outer_first_fragment",
    }
    assert must <= anomalies, sorted(must - anomalies)
