"""The PFCP header and the IE type-length-value walk (TS 29.244 §7.2, §8.1).

Every length is checked against the bytes that hold it before it is used;
anything that does not fit raises `PfcpError` with a short reason, which
the learner counts."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

PFCP_PORT = 8805
PFCP_VERSION = 1
#: IE types at or above this carry a 2-byte enterprise id after the length
VENDOR_IE_BIT = 0x8000
#: grouped IEs nest; real messages go three deep (Create PDR > PDI > ...)
MAX_IE_DEPTH = 4

_HEADER_FLAGS = struct.Struct("!BBH")
_SEID = struct.Struct("!Q")
_IE_HEADER = struct.Struct("!HH")


class PfcpError(ValueError):
    """A message that cannot be decoded; `reason` names why, briefly."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class Header:
    msg_type: int
    seid: int | None  # present on session messages (S flag)
    sequence: int
    #: the message's IEs: data[body_start:body_end]
    body_start: int
    body_end: int


def split_messages(data: bytes) -> Iterator[Header]:
    """The messages of one datagram: one, or several chained by the FO
    (follow on) flag."""
    offset = 0
    while True:
        if len(data) - offset < 4:
            raise PfcpError("short_header", f"{len(data) - offset} bytes at {offset}")
        flags, msg_type, length = _HEADER_FLAGS.unpack_from(data, offset)
        if flags >> 5 != PFCP_VERSION:
            raise PfcpError("bad_version", str(flags >> 5))
        has_seid = bool(flags & 0x01)
        follow_on = bool(flags & 0x04)
        end = offset + 4 + length
        if end > len(data):
            raise PfcpError("length_beyond_datagram", f"{length} at {offset}")
        fixed = 12 if has_seid else 4  # SEID (8), then sequence (3) + spare (1)
        if length < fixed:
            raise PfcpError("length_below_header", str(length))
        pos = offset + 4
        seid = None
        if has_seid:
            (seid,) = _SEID.unpack_from(data, pos)
            pos += 8
        sequence = int.from_bytes(data[pos : pos + 3], "big")
        yield Header(msg_type, seid, sequence, pos + 4, end)
        if not follow_on:
            return
        offset = end


def iter_ies(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(type, value start, value end) of each IE in data[start:end]; vendor
    IEs are given with their enterprise id skipped."""
    pos = start
    while pos < end:
        if end - pos < 4:
            raise PfcpError("short_ie_header", f"{end - pos} bytes at {pos}")
        ie_type, length = _IE_HEADER.unpack_from(data, pos)
        value = pos + 4
        if value + length > end:
            raise PfcpError("ie_beyond_parent", f"type {ie_type} length {length}")
        if ie_type & VENDOR_IE_BIT:
            if length < 2:
                raise PfcpError("vendor_ie_without_enterprise", str(ie_type))
            yield ie_type, value + 2, value + length
        else:
            yield ie_type, value, value + length
        pos = value + length
