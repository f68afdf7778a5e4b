"""Writing pcapng (the IETF draft "PCAP Next Generation Dump File Format"),
the little that evidence needs: a section header, one interface per attach
point (Ethernet, nanosecond timestamps, the capture's snap length), and an
enhanced packet block per frame with a comment that names its slice. Any
reader of pcapng opens it: tshark, Wireshark, `sauron replay`."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SECTION_HEADER = 0x0A0D0D0A
INTERFACE = 0x00000001
ENHANCED_PACKET = 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D
LINKTYPE_ETHERNET = 1

OPT_END = 0
OPT_COMMENT = 1
SHB_USER_APPLICATION = 4
IF_NAME = 2
IF_TSRESOL = 9
NANOSECONDS = 9  # if_tsresol: 10^-9 s


@dataclass(frozen=True)
class Packet:
    interface: int  # the index of its interface in the section
    time_ns: int  # unix nanoseconds
    data: bytes  # what was captured
    length: int  # the frame's length on the wire
    comment: str = ""


def _padded(raw: bytes) -> bytes:
    return raw + bytes(-len(raw) % 4)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + _padded(value)


def _options(pairs: Iterable[tuple[int, bytes]]) -> bytes:
    body = b"".join(_option(code, value) for code, value in pairs if value)
    return body + struct.pack("<HH", OPT_END, 0) if body else b""


def _block(kind: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)


def section_header(application: str, comment: str = "") -> bytes:
    body = struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1)
    body += _options(
        ((OPT_COMMENT, comment.encode()), (SHB_USER_APPLICATION, application.encode()))
    )
    return _block(SECTION_HEADER, body)


def interface(name: str, snaplen: int, linktype: int = LINKTYPE_ETHERNET) -> bytes:
    body = struct.pack("<HHI", linktype, 0, snaplen)
    body += _options(((IF_NAME, name.encode()), (IF_TSRESOL, bytes([NANOSECONDS]))))
    return _block(INTERFACE, body)


def packet(p: Packet) -> bytes:
    body = struct.pack(
        "<IIIII", p.interface, p.time_ns >> 32, p.time_ns & 0xFFFFFFFF, len(p.data), p.length
    )
    body += _padded(p.data) + _options(((OPT_COMMENT, p.comment.encode()),))
    return _block(ENHANCED_PACKET, body)


def capture(
    application: str,
    comment: str,
    interfaces: Sequence[str],
    snaplen: int,
    packets: Iterable[Packet],
) -> bytes:
    """A whole file: the section, its interfaces in order, the packets."""
    head = section_header(application, comment)
    head += b"".join(interface(name, snaplen) for name in interfaces)
    return head + b"".join(packet(p) for p in packets)
