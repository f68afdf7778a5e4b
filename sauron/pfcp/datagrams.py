"""PFCP datagrams out of Ethernet frames (a capture, or an AF_PACKET
socket): VLAN tags, IPv4 or IPv6, UDP port 8805 on either side."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from sauron.pfcp.wire import PFCP_PORT

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
VLAN_TYPES = (0x8100, 0x88A8)
MAX_VLAN_TAGS = 2
IPPROTO_UDP = 17


@dataclass(frozen=True)
class Datagram:
    src: str
    dst: str
    payload: bytes


class NotPfcp(Exception):
    """The frame carries no (whole) PFCP datagram; `reason` says why when
    it is PFCP the learner cannot use, else is "other"."""

    def __init__(self, reason: str = "other") -> None:
        super().__init__(reason)
        self.reason = reason


def from_ethernet(frame: bytes) -> Datagram:
    if len(frame) < 14:
        raise NotPfcp
    (ethertype,) = struct.unpack_from("!H", frame, 12)
    offset = 14
    for _ in range(MAX_VLAN_TAGS):
        if ethertype not in VLAN_TYPES:
            break
        if len(frame) < offset + 4:
            raise NotPfcp
        (ethertype,) = struct.unpack_from("!H", frame, offset + 2)
        offset += 4
    return from_ip(ethertype, frame, offset)


def from_ip(ethertype: int, packet: bytes, offset: int = 0) -> Datagram:
    if ethertype == ETH_P_IP:
        if len(packet) < offset + 20:
            raise NotPfcp
        ihl = (packet[offset] & 0x0F) * 4
        total = struct.unpack_from("!H", packet, offset + 2)[0]
        frag = struct.unpack_from("!H", packet, offset + 6)[0]
        if packet[offset + 9] != IPPROTO_UDP or ihl < 20:
            raise NotPfcp
        fragmented = frag & 0x3FFF  # more fragments, or an offset
        src = str(ipaddress.IPv4Address(packet[offset + 12 : offset + 16]))
        dst = str(ipaddress.IPv4Address(packet[offset + 16 : offset + 20]))
        udp = offset + ihl
        end = min(len(packet), offset + total)
    elif ethertype == ETH_P_IPV6:
        if len(packet) < offset + 40:
            raise NotPfcp
        # extension headers are not walked: PFCP peers do not send them
        if packet[offset + 6] != IPPROTO_UDP:
            raise NotPfcp
        fragmented = 0
        src = str(ipaddress.IPv6Address(packet[offset + 8 : offset + 24]))
        dst = str(ipaddress.IPv6Address(packet[offset + 24 : offset + 40]))
        udp = offset + 40
        end = min(len(packet), udp + struct.unpack_from("!H", packet, offset + 4)[0])
    else:
        raise NotPfcp
    if end < udp + 8:
        raise NotPfcp
    sport, dport, length = struct.unpack_from("!HHH", packet, udp)
    if PFCP_PORT not in (sport, dport):
        raise NotPfcp
    if fragmented:
        raise NotPfcp("ip_fragment")
    if length < 8 or udp + length > end:
        raise NotPfcp("udp_length_beyond_packet")
    return Datagram(src, dst, packet[udp + 8 : udp + length])
