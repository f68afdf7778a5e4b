"""GTP-U encapsulation and decapsulation for the testbed's UPF and gNB: the
per-packet path of a user-space node, so plain struct packing, no scapy."""

from __future__ import annotations

import struct
from dataclasses import dataclass

GTPU_PORT = 2152
G_PDU = 255
ECHO_REQUEST = 1
ECHO_RESPONSE = 2
END_MARKER = 254
PDU_SESSION_CONTAINER = 0x85
PDU_TYPE_DL = 0
PDU_TYPE_UL = 1

_HEADER = struct.Struct("!BBHI")
_OPTIONAL = struct.Struct("!HBB")


def encapsulate(
    teid: int,
    payload: bytes,
    qfi: int | None = None,
    uplink: bool = True,
    seq: int | None = None,
    msg_type: int = G_PDU,
) -> bytes:
    """A GTPv1-U message; a PDU Session Container (one 4-octet unit) when a
    QFI is given, a sequence number when seq is given."""
    flags = 0x30
    optional = b""
    if qfi is not None or seq is not None:
        flags |= 0x02 if seq is not None else 0
        if qfi is not None:
            flags |= 0x04
            pdu_type = PDU_TYPE_UL if uplink else PDU_TYPE_DL
            container = bytes([1, pdu_type << 4, qfi & 0x3F, 0])
            optional = _OPTIONAL.pack(seq or 0, 0, PDU_SESSION_CONTAINER) + container
        else:
            optional = _OPTIONAL.pack(seq or 0, 0, 0)
    return _HEADER.pack(flags, msg_type, len(optional) + len(payload), teid) + optional + payload


@dataclass(frozen=True)
class Decoded:
    msg_type: int
    teid: int
    seq: int | None
    qfi: int | None
    pdu_type: int | None
    payload: bytes


def decapsulate(data: bytes) -> Decoded | None:
    """The message and its T-PDU, or None when it is not GTPv1-U."""
    if len(data) < 8:
        return None
    flags, msg_type, length, teid = _HEADER.unpack_from(data)
    if flags & 0xF0 != 0x30:
        return None
    pos = 8
    seq = qfi = pdu_type = None
    if flags & 0x07:
        if len(data) < 12:
            return None
        s, _, nxt = _OPTIONAL.unpack_from(data, 8)
        seq = s if flags & 0x02 else None
        pos = 12
        nxt = nxt if flags & 0x04 else 0
        for _ in range(8):
            if nxt == 0:
                break
            if pos >= len(data) or data[pos] == 0:
                return None
            size = data[pos] * 4
            if pos + size > len(data):
                return None
            if nxt == PDU_SESSION_CONTAINER:
                pdu_type, qfi = data[pos + 1] >> 4, data[pos + 2] & 0x3F
            nxt = data[pos + size - 1]
            pos += size
    end = min(len(data), 8 + length)
    return Decoded(msg_type, teid, seq, qfi, pdu_type, data[pos:end])


def frame_bytes(gtp_length: int, ipv6: bool = False) -> int:
    """Bytes of the Ethernet frame that carries a GTP-U message of this size
    over IPv4 (or IPv6) and UDP: what the data plane counts."""
    return 14 + (40 if ipv6 else 20) + 8 + gtp_length
