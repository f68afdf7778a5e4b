"""A user-space reference of the data-plane parser and classifier, written
from the counting rules (not from the C), used only by the differential tests.

It answers, for one frame run through the N3 ingress program, what the
kernel records in its parse result: category, first anomaly, TEID, message
kind, QFI, PDU type, extension count, sequence number, inner protocol and
ports, UE address, direction and slice.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from sauron.abi import layout
from sauron.catalog import Catalog

C = layout.constants()
EV = {name: value for value, name in layout.EVENT_NAMES.items()}
AN = {name: value for value, name in layout.ANOMALY_NAMES.items()}
MSG = {name: value for value, name in layout.MSG_KIND_NAMES.items()}

VLAN_TYPES = (0x8100, 0x88A8)
IPV6_EXT = (0, 43, 60, 44, 51)
PORTED = (6, 17, 132)
MESSAGE_KIND = {
    255: "g_pdu",
    1: "echo_request",
    2: "echo_response",
    254: "end_marker",
    26: "error_indication",
}
UPLINK, DOWNLINK = layout.DIR_UPLINK, layout.DIR_DOWNLINK


@dataclass
class Expected:
    event: int = EV["ip_not_gtpu"]
    anomaly: int = 0
    teid: int = 0
    slice_id: int = 0
    direction: int = 0
    msg_kind: int = 0
    qfi: int = layout.NO_QFI
    pdu_type: int = 255
    inner_proto: int = 0
    inner_sport: int = 0
    inner_dport: int = 0
    ext_headers: int = 0
    gtp_seq: int = 0
    has_seq: bool = False
    ue_addr: bytes = bytes(16)

    def note(self, reason: str) -> None:
        if self.anomaly == 0:
            self.anomaly = AN[reason]


def _mapped(addr4: bytes) -> bytes:
    return bytes(10) + b"\xff\xff" + addr4


@dataclass
class _Ip:
    proto: int = 0
    first_fragment: bool = False
    later_fragment: bool = False
    payload_len: int = 0
    total_len: int = 0
    src: bytes = bytes(16)
    dst: bytes = bytes(16)


class ReferenceClassifier:
    """The catalog's rules, applied the way an operator reads them."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def by_teid(self, teid: int) -> int | None:
        for s in self.catalog.slices:
            if teid in s.spec.teids or any(r.first <= teid <= r.last for r in s.spec.teid_ranges):
                return s.id
        return None

    def by_ue(self, addr: bytes) -> int | None:
        ip6 = ipaddress.IPv6Address(addr)
        ip = ip6.ipv4_mapped or ip6
        best: tuple[int, int] | None = None
        for s in self.catalog.slices:
            for net in s.spec.ue_subnets:
                if (
                    net.version == ip.version
                    and ip in net
                    and (best is None or net.prefixlen > best[0])
                ):
                    best = (net.prefixlen, s.id)
        return best[1] if best else None

    def by_qfi(self, qfi: int) -> int | None:
        if qfi >= layout.MAX_QFI:
            return None
        return next((s.id for s in self.catalog.slices if qfi in s.spec.qfis), None)


def _outer_ip(frame: bytes, pos: int, version: int, out: Expected) -> tuple[_Ip, int] | None:
    ip = _Ip()
    end = len(frame)
    if version == 4:
        if pos + 20 > end:
            out.note("ipv4_truncated")
            return None
        hlen = (frame[pos] & 0xF) * 4
        if hlen < 20:
            out.note("ipv4_bad_ihl")
            return None
        if pos + hlen > end:
            out.note("ipv4_truncated")
            return None
        total = struct.unpack_from("!H", frame, pos + 2)[0]
        if total < hlen:
            out.note("ipv4_bad_total_length")
            return None
        if pos + total > end:
            out.note("ip_truncated")
        frag = struct.unpack_from("!H", frame, pos + 6)[0]
        ip.later_fragment = (frag & 0x1FFF) != 0
        ip.first_fragment = not ip.later_fragment and bool(frag & 0x2000)
        ip.proto = frame[pos + 9]
        ip.total_len, ip.payload_len = total, total - hlen
        return ip, pos + hlen
    if pos + 40 > end:
        out.note("ipv6_truncated")
        return None
    payload = struct.unpack_from("!H", frame, pos + 4)[0]
    if pos + 40 + payload > end:
        out.note("ip_truncated")
    nxt = frame[pos + 6]
    pos += 40
    ext_bytes = 0
    for _ in range(layout.MAX_IPV6_EXT_HEADERS):
        if nxt not in IPV6_EXT:
            break
        if pos + 2 > end:
            out.note("ipv6_ext_truncated")
            return None
        if nxt == 44:
            if pos + 8 > end:
                out.note("ipv6_ext_truncated")
                return None
            off = struct.unpack_from("!H", frame, pos + 2)[0]
            ip.later_fragment = (off & 0xFFF8) != 0
            ip.first_fragment = not ip.later_fragment and bool(off & 1)
            length = 8
        elif nxt == 51:
            length = (frame[pos + 1] + 2) * 4
        else:
            length = (frame[pos + 1] + 1) * 8
        if pos + length > end:
            out.note("ipv6_ext_truncated")
            return None
        nxt = frame[pos]
        ext_bytes += length
        pos += length
    if nxt in IPV6_EXT:
        out.note("ipv6_ext_too_many")
        return None
    ip.proto = nxt
    ip.total_len = payload + 40
    ip.payload_len = max(payload - ext_bytes, 0)
    return ip, pos


def _inner_ip(frame: bytes, pos: int, out: Expected) -> _Ip | None:
    end = len(frame)
    if pos + 1 > end:
        out.note("inner_truncated")
        return None
    ip = _Ip()
    version = frame[pos] >> 4
    if version == 4:
        if pos + 20 > end:
            out.note("inner_truncated")
            return None
        hlen = (frame[pos] & 0xF) * 4
        total = struct.unpack_from("!H", frame, pos + 2)[0]
        if hlen < 20 or total < hlen or pos + hlen > end:
            out.note("inner_truncated")
            return None
        if pos + total > end:
            out.note("inner_truncated")
        ip.proto = frame[pos + 9]
        ip.total_len = total
        ip.later_fragment = (struct.unpack_from("!H", frame, pos + 6)[0] & 0x1FFF) != 0
        ip.src, ip.dst = _mapped(frame[pos + 12 : pos + 16]), _mapped(frame[pos + 16 : pos + 20])
        pos += hlen
    elif version == 6:
        if pos + 40 > end:
            out.note("inner_truncated")
            return None
        total = struct.unpack_from("!H", frame, pos + 4)[0] + 40
        if pos + total > end:
            out.note("inner_truncated")
        ip.proto = frame[pos + 6]
        ip.total_len = total
        ip.src, ip.dst = frame[pos + 8 : pos + 24], frame[pos + 24 : pos + 40]
        pos += 40
    else:
        out.note("inner_not_ip")
        return None
    if not ip.later_fragment and ip.proto in PORTED:
        if pos + 4 > end:
            out.note("inner_l4_truncated")
        else:
            out.inner_sport, out.inner_dport = struct.unpack_from("!HH", frame, pos)
    return ip


def expected_result(frame: bytes, rules: ReferenceClassifier, auto: bool) -> Expected:
    """What the N3 ingress program records for `frame`; auto: the point runs
    in AUTO direction mode, else its own (uplink)."""
    out = Expected()
    end = len(frame)
    if end < 14:
        out.event = EV["not_ip"]
        out.note("eth_truncated")
        return out
    proto = struct.unpack_from("!H", frame, 12)[0]
    pos = 14
    for _ in range(layout.MAX_VLAN_TAGS):
        if proto not in VLAN_TYPES:
            break
        if pos + 4 > end:
            out.event = EV["not_ip"]
            out.note("vlan_truncated")
            return out
        proto = struct.unpack_from("!H", frame, pos + 2)[0]
        pos += 4
    if proto in VLAN_TYPES:
        out.event = EV["not_ip"]
        out.note("vlan_too_deep")
        return out
    if proto not in (0x0800, 0x86DD):
        out.event = EV["not_ip"]
        return out
    parsed = _outer_ip(frame, pos, 4 if proto == 0x0800 else 6, out)
    if parsed is None:
        return out
    outer, pos = parsed
    if outer.later_fragment:
        out.event = EV["outer_fragment"]
        return out
    if outer.proto != 17:
        return out
    if pos + 8 > end:
        out.note("udp_truncated")
        return out
    sport, dport, udp_len = struct.unpack_from("!HHH", frame, pos)
    if udp_len < 8 or (not outer.first_fragment and udp_len > outer.payload_len):
        out.note("udp_bad_length")
    pos += 8
    if layout.GTPU_PORT not in (sport, dport):
        return out
    if outer.first_fragment:
        out.note("outer_first_fragment")
    if pos + 8 > end:
        out.note("gtpu_truncated")
        return out
    flags, msg_type, gtp_len, teid = struct.unpack_from("!BBHI", frame, pos)
    if flags & 0xF0 != 0x30:
        out.note("gtpu_not_v1")
        return out
    out.event = EV["gtpu"]
    out.teid = teid
    out.msg_kind = MSG[MESSAGE_KIND.get(msg_type, "other")]
    out.has_seq = bool(flags & 0x02)
    pos += 8
    if udp_len >= 16 and gtp_len != udp_len - 16:
        out.note("gtpu_length_mismatch")
    payload_ok = _walk_gtpu_options(frame, pos, flags, out)

    inner = None
    if out.msg_kind == MSG["g_pdu"] and payload_ok is not None:
        inner = _inner_ip(frame, payload_ok, out)
        if inner is not None:
            out.inner_proto = inner.proto
    _classify(out, inner, rules, auto)
    return out


def _walk_gtpu_options(frame: bytes, pos: int, flags: int, out: Expected) -> int | None:
    """Optional fields and the extension chain; returns where the T-PDU
    starts, or None when the chain is broken."""
    end = len(frame)
    if not flags & 0x07:
        return pos
    if pos + 4 > end:
        out.note("gtpu_opt_truncated")
        return None
    out.gtp_seq = struct.unpack_from("!H", frame, pos)[0]
    nxt = frame[pos + 3] if flags & 0x04 else 0
    pos += 4
    for _ in range(layout.MAX_GTPU_EXT_HEADERS):
        if nxt == 0:
            break
        if pos + 1 > end:
            out.note("gtpu_ext_truncated")
            return None
        length = frame[pos] * 4
        if length == 0:
            out.note("gtpu_ext_zero_length")
            return None
        if pos + length > end:
            out.note("gtpu_ext_truncated")
            return None
        if nxt == 0x85:
            pdu_type = frame[pos + 1] >> 4
            if pdu_type > 1:
                out.note("gtpu_pdu_container_bad")
            else:
                out.pdu_type = pdu_type
                out.qfi = frame[pos + 2] & 0x3F
        nxt = frame[pos + length - 1]
        pos += length
        out.ext_headers += 1
    if nxt != 0:
        out.note("gtpu_ext_chain_too_long")
        return None
    return pos


def _classify(out: Expected, inner: _Ip | None, rules: ReferenceClassifier, auto: bool) -> None:
    mode = "auto" if auto else "uplink"
    if mode == "auto" and out.pdu_type != 255:
        mode = "downlink" if out.pdu_type == 0 else "uplink"
    ue_slice = None
    has_ue = False
    if inner is None:
        out.direction = DOWNLINK if mode == "downlink" else UPLINK
    elif mode == "auto":
        has_ue = True
        src_slice, dst_slice = rules.by_ue(inner.src), None
        if src_slice is None:
            dst_slice = rules.by_ue(inner.dst)
        if src_slice is not None:
            out.direction, out.ue_addr, ue_slice = UPLINK, inner.src, src_slice
        elif dst_slice is not None:
            out.direction, out.ue_addr, ue_slice = DOWNLINK, inner.dst, dst_slice
        else:
            out.direction, out.ue_addr = UPLINK, inner.src
    else:
        has_ue = True
        out.direction = DOWNLINK if mode == "downlink" else UPLINK
        out.ue_addr = inner.dst if mode == "downlink" else inner.src
        ue_slice = rules.by_ue(out.ue_addr)

    teid_slice = rules.by_teid(out.teid) if out.teid else None
    if teid_slice is not None:
        out.slice_id = teid_slice
    elif has_ue and ue_slice is not None:
        out.slice_id = ue_slice
    else:
        out.slice_id = rules.by_qfi(out.qfi) or 0
