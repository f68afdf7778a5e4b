"""Which way each GTP-U frame of a replayed capture goes.

A capture usually holds both directions of a link, and the kernel's own
AUTO mode (PDU Session Container type, else the inner address in a UE
subnet, else uplink) counts every G-PDU as uplink when the UPF sends
downlink without a container (Open5GS does when no QER is set) and the UE
is in no known subnet. A replay knows more than the kernel does: the
capture's PFCP names the UPF's own tunnel ends and the gNB's, and the frames
that carry a container tell which addresses are the UPF's. So each frame's
direction is decided here, in this order:

1. PFCP: the G-PDU's (TEID, destination) is a tunnel end of a session known
   at its time; else its addresses are the UPF's N3 or a gNB's;
2. its PDU Session Container type;
3. the addresses the capture's containers showed to be the UPF's or a gNB's;
4. otherwise the kernel's AUTO.

Only the outer headers are read: anything this reader cannot read is left
to the kernel.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Container, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from sauron.abi import layout
from sauron.control.record import ControlSession

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

PFCP = "pfcp"
CONTAINER = "container"
ADDRESSES = "addresses"
KERNEL = "kernel"
#: every frame run in the direction the user gave (--direction)
FIXED = "fixed"
#: the methods of the per-frame decision, in the order they are tried
DECIDING_METHODS = (PFCP, CONTAINER, ADDRESSES, KERNEL)
METHOD_LABELS = {
    PFCP: "PFCP tunnel ends",
    CONTAINER: "PDU Session Container",
    ADDRESSES: "addresses seen",
    KERNEL: "the kernel (UE subnet, else uplink)",
    FIXED: "--direction",
}

ETH_HEADER = 14
VLAN_TYPES = (0x8100, 0x88A8)
MAX_VLAN_TAGS = 2
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
IPPROTO_UDP = 17
UDP_HEADER = 8
GTPU_HEADER = 8
GTPU_OPTIONAL = 4  # sequence number, N-PDU number, next extension type
GTPU_V1_PT = 0x30  # version 1, protocol type GTP
GTPU_FLAG_E = 0x04
GTPU_G_PDU = 255
PDU_SESSION_CONTAINER = 0x85
PDU_TYPE_DL = 0
PDU_TYPE_UL = 1


@dataclass(frozen=True)
class GtpuOuter:
    """What a GTP-U frame's outer headers say about where it goes."""

    source: IpAddress
    destination: IpAddress
    message_type: int
    teid: int
    #: the PDU Session Container's PDU type (0 DL, 1 UL), None without one
    pdu_type: int | None

    @property
    def is_g_pdu(self) -> bool:
        return self.message_type == GTPU_G_PDU


def read_gtpu_outer(frame: bytes) -> GtpuOuter | None:
    """The outer headers of an Ethernet frame carrying GTPv1-U on UDP 2152
    (up to two VLAN tags, IPv4 or IPv6 without extension headers); None for
    anything else, a later IPv4 fragment or a frame cut too short included."""
    if len(frame) < ETH_HEADER:
        return None
    ethertype = int.from_bytes(frame[12:14], "big")
    offset = ETH_HEADER
    for _ in range(MAX_VLAN_TAGS):
        if ethertype not in VLAN_TYPES:
            break
        if len(frame) < offset + 4:
            return None
        ethertype = int.from_bytes(frame[offset + 2 : offset + 4], "big")
        offset += 4
    outer = _udp_of_ip(frame, ethertype, offset)
    if outer is None:
        return None
    source, destination, udp = outer
    if len(frame) < udp + UDP_HEADER:
        return None
    ports = (
        int.from_bytes(frame[udp : udp + 2], "big"),
        int.from_bytes(frame[udp + 2 : udp + 4], "big"),
    )
    if layout.GTPU_PORT not in ports:
        return None
    gtp = udp + UDP_HEADER
    if len(frame) < gtp + GTPU_HEADER or frame[gtp] & 0xF0 != GTPU_V1_PT:
        return None
    return GtpuOuter(
        source=source,
        destination=destination,
        message_type=frame[gtp + 1],
        teid=int.from_bytes(frame[gtp + 4 : gtp + 8], "big"),
        pdu_type=_pdu_type(frame, gtp),
    )


def _udp_of_ip(
    frame: bytes, ethertype: int, offset: int
) -> tuple[IpAddress, IpAddress, int] | None:
    """Source, destination and the UDP header's offset of an IP packet
    carrying UDP (not a later fragment)."""
    if ethertype == ETH_P_IP:
        if len(frame) < offset + 20:
            return None
        header = (frame[offset] & 0x0F) * 4
        total = int.from_bytes(frame[offset + 2 : offset + 4], "big")
        fragment_offset = int.from_bytes(frame[offset + 6 : offset + 8], "big") & 0x1FFF
        if header < 20 or total < header or len(frame) < offset + header:
            return None
        if fragment_offset or frame[offset + 9] != IPPROTO_UDP:
            return None
        return (
            ipaddress.IPv4Address(frame[offset + 12 : offset + 16]),
            ipaddress.IPv4Address(frame[offset + 16 : offset + 20]),
            offset + header,
        )
    if ethertype == ETH_P_IPV6:
        if len(frame) < offset + 40 or frame[offset + 6] != IPPROTO_UDP:
            return None
        return (
            ipaddress.IPv6Address(frame[offset + 8 : offset + 24]),
            ipaddress.IPv6Address(frame[offset + 24 : offset + 40]),
            offset + 40,
        )
    return None


def _pdu_type(frame: bytes, gtp: int) -> int | None:
    """The PDU type of the PDU Session Container in the extension chain,
    walked as the kernel walks it: by each header's length, at most
    MAX_GTPU_EXT_HEADERS, a type other than DL or UL read as no container."""
    flags = frame[gtp]
    optional = gtp + GTPU_HEADER
    if not flags & GTPU_FLAG_E or len(frame) < optional + GTPU_OPTIONAL:
        return None
    found: int | None = None
    next_type = frame[optional + 3]
    at = optional + GTPU_OPTIONAL
    for _ in range(layout.MAX_GTPU_EXT_HEADERS):
        if next_type == 0 or len(frame) < at + 1:
            break
        length = frame[at] * 4
        if length == 0 or len(frame) < at + length:
            break
        if next_type == PDU_SESSION_CONTAINER and frame[at + 1] >> 4 in (PDU_TYPE_DL, PDU_TYPE_UL):
            found = frame[at + 1] >> 4
        next_type = frame[at + length - 1]
        at += length
    return found


def _address(text: str | None) -> IpAddress | None:
    if text is None:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _discount(counter: Counter[Any], items: Iterable[Hashable]) -> None:
    """Takes items out, dropping those no longer held (`in` tells presence)."""
    for item in items:
        counter[item] -= 1
        if counter[item] <= 0:
            del counter[item]


def _mode_by_addresses(
    outer: GtpuOuter, upf: Container[IpAddress], gnb: Container[IpAddress]
) -> int | None:
    """Sent to the UPF: uplink; from it, or to a gNB: downlink; from a gNB:
    uplink."""
    if outer.destination in upf:
        return layout.DIRMODE_UPLINK
    if outer.source in upf or outer.destination in gnb:
        return layout.DIRMODE_DOWNLINK
    if outer.source in gnb:
        return layout.DIRMODE_UPLINK
    return None


@dataclass(frozen=True)
class _SessionEnds:
    """One session's tunnel ends as direction rules."""

    #: (TEID, address a G-PDU is sent to, the direction mode it means)
    tunnels: tuple[tuple[int, IpAddress, int], ...]
    upf_n3: tuple[IpAddress, ...]
    upf_core: tuple[IpAddress, ...]
    gnb: tuple[IpAddress, ...]

    @classmethod
    def of(cls, session: ControlSession) -> _SessionEnds:
        tunnels: list[tuple[int, IpAddress, int]] = []
        upf_n3: list[IpAddress] = []
        upf_core: list[IpAddress] = []
        gnb: list[IpAddress] = []
        for end in session.tunnels:
            address = _address(end.address)
            if address is None or end.interface not in ("access", "core"):
                continue
            # uplink arrives at the UPF's access end and leaves to the core's
            # far end; downlink the other way round
            uplink = (end.interface == "access") == end.local
            mode = layout.DIRMODE_UPLINK if uplink else layout.DIRMODE_DOWNLINK
            tunnels.append((end.teid, address, mode))
            if end.interface == "access":
                (upf_n3 if end.local else gnb).append(address)
            elif end.local:
                upf_core.append(address)
        return cls(tuple(tunnels), tuple(upf_n3), tuple(upf_core), tuple(gnb))


class PfcpTunnelEnds:
    """The tunnel ends named by the PFCP sessions known so far (established,
    not deleted), kept in step with the learner: a session's ends are
    counted in and out as it changes, so a busy capture is not rescanned."""

    def __init__(self) -> None:
        self._sessions: dict[tuple[Any, ...], _SessionEnds] = {}
        self._tunnels: Counter[tuple[int, IpAddress, int]] = Counter()
        self._upf_n3: Counter[IpAddress] = Counter()
        self._upf_core: Counter[IpAddress] = Counter()
        self._gnb: Counter[IpAddress] = Counter()

    def upsert(self, session: ControlSession) -> None:
        self.remove(session)
        ends = _SessionEnds.of(session)
        self._sessions[(session.source, *session.key)] = ends
        self._tunnels.update(ends.tunnels)
        self._upf_n3.update(ends.upf_n3)
        self._upf_core.update(ends.upf_core)
        self._gnb.update(ends.gnb)

    def remove(self, session: ControlSession) -> None:
        ends = self._sessions.pop((session.source, *session.key), None)
        if ends is None:
            return
        _discount(self._tunnels, ends.tunnels)
        _discount(self._upf_n3, ends.upf_n3)
        _discount(self._upf_core, ends.upf_core)
        _discount(self._gnb, ends.gnb)

    def mode_of(self, outer: GtpuOuter) -> int | None:
        """A G-PDU sent to a tunnel end by (TEID, address), else any GTP-U
        message by whether it is sent to or from the UPF's N3 address or to
        or from a gNB's; None when PFCP says nothing (or both ways)."""
        if outer.is_g_pdu:
            up = (outer.teid, outer.destination, layout.DIRMODE_UPLINK) in self._tunnels
            down = (outer.teid, outer.destination, layout.DIRMODE_DOWNLINK) in self._tunnels
            if up != down:
                return layout.DIRMODE_UPLINK if up else layout.DIRMODE_DOWNLINK
        if outer.source in self._upf_core or outer.destination in self._upf_core:
            return None  # the UPF's N3 address serves its core side too (N9)
        return _mode_by_addresses(outer, self._upf_n3, self._gnb)


class SeenAddresses:
    """The UPF's and the gNBs' N3 addresses as the capture's PDU Session
    Containers show them: an uplink container travels from a gNB to the UPF,
    a downlink one back. An address seen on both sides tells nothing."""

    def __init__(self) -> None:
        self.upf: set[IpAddress] = set()
        self.gnb: set[IpAddress] = set()

    @classmethod
    def of_frames(cls, frames: Iterable[bytes]) -> SeenAddresses:
        seen = cls()
        for frame in frames:
            outer = read_gtpu_outer(frame)
            if outer is not None:
                seen.learn(outer)
        both = seen.upf & seen.gnb
        seen.upf -= both
        seen.gnb -= both
        return seen

    def learn(self, outer: GtpuOuter) -> None:
        if outer.pdu_type == PDU_TYPE_UL:
            self.upf.add(outer.destination)
            self.gnb.add(outer.source)
        elif outer.pdu_type == PDU_TYPE_DL:
            self.upf.add(outer.source)
            self.gnb.add(outer.destination)

    def mode_of(self, outer: GtpuOuter) -> int | None:
        return _mode_by_addresses(outer, self.upf, self.gnb)


@dataclass(frozen=True)
class Decision:
    #: the direction mode the program runs the frame with
    mode: int
    method: str


KERNEL_DECIDES = Decision(layout.DIRMODE_AUTO, KERNEL)


class FrameDirections:
    """Decides each frame's direction mode, trying PFCP, the container, the
    addresses seen, then leaving it to the kernel."""

    def __init__(self, pfcp: PfcpTunnelEnds, seen: SeenAddresses) -> None:
        self.pfcp = pfcp
        self.seen = seen

    def decide(self, frame: bytes) -> Decision:
        outer = read_gtpu_outer(frame)
        if outer is None:
            return KERNEL_DECIDES
        mode = self.pfcp.mode_of(outer)
        if mode is not None:
            return Decision(mode, PFCP)
        if outer.pdu_type is not None:
            uplink = outer.pdu_type == PDU_TYPE_UL
            return Decision(layout.DIRMODE_UPLINK if uplink else layout.DIRMODE_DOWNLINK, CONTAINER)
        mode = self.seen.mode_of(outer)
        if mode is not None:
            return Decision(mode, ADDRESSES)
        return KERNEL_DECIDES


class DirectionTally:
    """How the frames the program counted were given their direction: per
    method, uplink and downlink; and per run of consecutive frames with the
    same direction and method, so each frame's is told without a line each."""

    def __init__(self, methods: Iterable[str]) -> None:
        self.decided_by = {m: dict.fromkeys(layout.DIRECTION_NAMES.values(), 0) for m in methods}
        self.runs: list[list[Any]] = []

    def count(self, number: int, direction: str, method: str) -> None:
        self.decided_by.setdefault(method, dict.fromkeys(layout.DIRECTION_NAMES.values(), 0))
        self.decided_by[method][direction] += 1
        last = self.runs[-1] if self.runs else None
        if last is not None and last[1] == number - 1 and last[2:] == [direction, method]:
            last[1] = number
        else:
            self.runs.append([number, number, direction, method])

    def doc(self) -> dict[str, Any]:
        return {"decided_by": self.decided_by, "frames": self.runs}


def summary_line(direction: dict[str, Any]) -> str:
    """One line telling how many frames each method sent which way."""
    parts = [
        f"{counts['uplink']} uplink, {counts['downlink']} downlink by {METHOD_LABELS.get(m, m)}"
        for m, counts in direction["decided_by"].items()
        if counts["uplink"] or counts["downlink"]
    ]
    return "directions: " + ("; ".join(parts) if parts else "no frame counted")
