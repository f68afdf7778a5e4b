"""Frame builders for the parser tests (scapy): build stage of build/run/check."""

from __future__ import annotations

from scapy.contrib.gtp import GTP_U_Header, GTPPDUSessionContainer
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.packet import Packet, Raw

MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}


def ext_header(next_type: int, content: bytes) -> bytes:
    """A raw GTP-U extension header: length in 4-octet units, content padded."""
    body = content
    while (len(body) + 2) % 4:
        body += b"\x00"
    return bytes([(len(body) + 2) // 4]) + body + bytes([next_type])


def pdu_session_container(qfi: int, uplink: bool) -> bytes:
    """Content of a PDU Session Container: PDU type nibble, then QFI."""
    return bytes([(1 if uplink else 0) << 4, qfi & 0x3F])


def gtpu_raw(
    teid: int,
    msg_type: int = 255,
    payload: bytes = b"",
    seq: int | None = None,
    npdu: int | None = None,
    extensions: list[tuple[int, bytes]] | None = None,
    length: int | None = None,
    flags_override: int | None = None,
) -> bytes:
    """A GTPv1-U header built by hand, so tests control every bit.
    extensions: (type, content) in chain order."""
    extensions = extensions or []
    e = bool(extensions)
    s = seq is not None
    pn = npdu is not None
    flags = 0x30 | (0x04 if e else 0) | (0x02 if s else 0) | (0x01 if pn else 0)
    if flags_override is not None:
        flags = flags_override
    optional = b""
    if e or s or pn:
        first = extensions[0][0] if extensions else 0
        optional = (seq or 0).to_bytes(2, "big") + bytes([npdu or 0, first])
        for i, (_, content) in enumerate(extensions):
            nxt = extensions[i + 1][0] if i + 1 < len(extensions) else 0
            optional += ext_header(nxt, content)
    body = optional + payload
    gtp_len = len(body) if length is None else length
    return bytes([flags, msg_type]) + gtp_len.to_bytes(2, "big") + teid.to_bytes(4, "big") + body


def outer(
    gtp: bytes,
    ipv6: bool = False,
    vlans: tuple[int, ...] = (),
    sport: int = 2152,
    dport: int = 2152,
    src: str | None = None,
    dst: str | None = None,
) -> bytes:
    l2: Packet = Ether(**MACS)
    for i, vid in enumerate(vlans):
        l2 = l2 / (Dot1AD(vlan=vid) if (i == 0 and len(vlans) == 2) else Dot1Q(vlan=vid))
    ip: Packet = (
        IPv6(src=src or "2001:db8::1", dst=dst or "2001:db8::2")
        if ipv6
        else IP(src=src or "192.0.2.1", dst=dst or "192.0.2.2")
    )
    return bytes(l2 / ip / UDP(sport=sport, dport=dport) / Raw(gtp))


def inner_v4(
    src: str = "10.45.0.7", dst: str = "198.51.100.9", proto: str = "udp", size: int = 32
) -> bytes:
    l4: Packet = {
        "udp": UDP(sport=1111, dport=2222),
        "tcp": TCP(sport=1111, dport=2222),
        "icmp": ICMP(),
    }[proto]
    return bytes(IP(src=src, dst=dst) / l4 / Raw(bytes(size)))


def inner_v6(src: str = "2001:db8:45::7", dst: str = "2001:db8:ffff::9", size: int = 32) -> bytes:
    return bytes(IPv6(src=src, dst=dst) / UDP(sport=1111, dport=2222) / Raw(bytes(size)))


def scapy_gtpu(inner: Packet, teid: int, qfi: int, uplink: bool = True) -> bytes:
    """The same through scapy's own GTP layer: a second builder to cross-check ours."""
    return bytes(
        Ether(**MACS)
        / IP(src="192.0.2.1", dst="192.0.2.2")
        / UDP(sport=2152, dport=2152)
        / GTP_U_Header(teid=teid, E=1, next_ex=0x85)
        / GTPPDUSessionContainer(type=1 if uplink else 0, QFI=qfi)
        / inner
    )


# --- one packet on both sides of a UPF (N3 tunnelled, N6 plain) ------------

UE = "10.45.0.7"  # eMBB pool
SERVER = "198.51.100.9"
NAT = "198.51.100.1"  # the UPF's N6 address when it masquerades
GNB, UPF = "192.0.2.1", "192.0.2.2"


def gtpu(inner: Packet, teid: int, uplink: bool, seq: int | None = None, qfi: int = 9) -> bytes:
    ext = [(0x85, pdu_session_container(qfi, uplink=uplink))]
    src, dst = (GNB, UPF) if uplink else (UPF, GNB)
    return outer(gtpu_raw(teid, payload=bytes(inner), seq=seq, extensions=ext), src=src, dst=dst)


def plain(inner: Packet) -> bytes:
    return bytes(Ether(**MACS) / inner)


def ul_packet(payload: bytes = b"uplink-1", sport: int = 40000, ip_id: int = 7) -> Packet:
    return IP(src=UE, dst=SERVER, id=ip_id) / UDP(sport=sport, dport=5000) / Raw(payload)


#: a TEID of no catalog range (the default catalog's are 0x1xxxx to 0x3xxxx)
STRAY_TEID = 0x00500001
#: a UE of URLLC's pool
URLLC_UE = "10.46.0.9"


def stray(source: str = URLLC_UE, teid: int = STRAY_TEID) -> bytes:
    """An uplink G-PDU from the gNB that fails the security checks as the
    test picks: a TEID of no catalog range and no session (unknown_teid, in
    the slice of `source`'s pool), or a slice's TEID with a `source` outside
    its pools (ue_source_spoofed)."""
    inner = IP(src=source, dst=SERVER) / UDP(sport=40000, dport=5000) / Raw(b"stray")
    return gtpu(inner, teid, uplink=True)


def natted(packet: Packet) -> Packet:
    """What N6 NAT and routing make of an uplink packet: new source address
    and port, TTL one less, checksums recomputed."""
    out = packet.copy()
    out[IP].src = NAT
    out[IP].ttl -= 1
    out[UDP].sport = 61000
    del out[IP].chksum
    del out[UDP].chksum
    return IP(bytes(out))
