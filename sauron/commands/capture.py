"""Reading pcap and pcapng captures as Ethernet frames, the form the XDP and
TC programs see. Linux cooked captures (SLL, SLL2, as `tcpdump -i any`
writes them) and raw IP get a synthetic Ethernet header carrying the same
protocol; nothing else of the frame changes."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scapy.utils import RawPcapNgReader, RawPcapReader

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_RAW_ALT = (12, 14)
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276

_SYNTHETIC_MACS = bytes.fromhex("020000000002") + bytes.fromhex("020000000001")
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD


class CaptureError(ValueError):
    pass


@dataclass(frozen=True)
class CapturedFrame:
    number: int  # 1-based, as tshark numbers frames
    data: bytes  # an Ethernet frame
    wire_length: int  # length on the wire (>= len(data) when snap-truncated)
    time: float = 0.0  # unix seconds, as captured


def _timestamp(meta: Any, nanoseconds: bool) -> float:
    if hasattr(meta, "tshigh"):  # pcapng: units of 1/tsresol seconds
        ticks = (int(meta.tshigh) << 32) | int(meta.tslow)
        return ticks / float(getattr(meta, "tsresol", 1_000_000) or 1_000_000)
    fraction = int(getattr(meta, "usec", 0))
    return int(getattr(meta, "sec", 0)) + fraction / (1e9 if nanoseconds else 1e6)


def _ether(proto: int, payload: bytes) -> bytes:
    return _SYNTHETIC_MACS + struct.pack("!H", proto) + payload


def _raw_ip(payload: bytes) -> bytes:
    version = payload[0] >> 4 if payload else 0
    return _ether(ETH_P_IPV6 if version == 6 else ETH_P_IP, payload)


def to_ethernet(linktype: int, data: bytes) -> bytes | None:
    """The frame as Ethernet, or None when the link type is unknown."""
    if linktype == LINKTYPE_ETHERNET:
        return data
    if linktype == LINKTYPE_LINUX_SLL:
        # packet type, ARPHRD, address length, 8 address bytes, protocol
        if len(data) < 16:
            return _ether(0, b"")
        return _ether(struct.unpack_from("!H", data, 14)[0], data[16:])
    if linktype == LINKTYPE_LINUX_SLL2:
        # protocol, reserved, ifindex, ARPHRD, packet type, address length, 8 bytes
        if len(data) < 20:
            return _ether(0, b"")
        return _ether(struct.unpack_from("!H", data, 0)[0], data[20:])
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6, *LINKTYPE_RAW_ALT):
        return _raw_ip(data)
    return None


def _is_pcapng(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == b"\x0a\x0d\x0d\x0a"


def read_frames(path: Path | str) -> Iterator[CapturedFrame]:
    """Every frame of a pcap or pcapng file, as Ethernet."""
    path = Path(path)
    if not path.is_file():
        raise CaptureError(f"{path}: no such capture file")
    try:
        reader = RawPcapNgReader(str(path)) if _is_pcapng(path) else RawPcapReader(str(path))
    except Exception as exc:
        raise CaptureError(f"{path}: not a pcap or pcapng capture ({exc})") from None
    nanoseconds = bool(getattr(reader, "nano", False))
    with reader:
        for number, (data, meta) in enumerate(reader, start=1):
            linktype = int(getattr(meta, "linktype", None) or reader.linktype)
            frame = to_ethernet(linktype, data)
            if frame is None:
                raise CaptureError(f"{path}: frame {number}: unsupported link type {linktype}")
            wire = int(
                getattr(meta, "wirelen", None) or getattr(meta, "caplen", len(data)) or len(data)
            )
            yield CapturedFrame(
                number=number, data=frame, wire_length=wire, time=_timestamp(meta, nanoseconds)
            )
