"""The Python view of xdp/include/sauron_shared.h.

Constants and enum values are read from the header itself, so the header is
their only owner. The ctypes structures mirror its structs; a test holds them
against the types clang builds from the same header.
"""

from __future__ import annotations

import ctypes
import re
from functools import cache
from typing import Any

from sauron.bpf.source import shared_header

_DEFINE = re.compile(r"^\s*#define\s+(SAURON_\w+)\s+(0x[0-9a-fA-F]+|\d+)\b", re.M)
_ENUMERATOR = re.compile(r"^\s*(SAURON_\w+)\s*=\s*(0x[0-9a-fA-F]+|\d+)\s*,", re.M)


@cache
def constants() -> dict[str, int]:
    """Every SAURON_* #define and enumerator of the shared header."""
    text = shared_header().read_text()
    values: dict[str, int] = {}
    for pattern in (_DEFINE, _ENUMERATOR):
        for name, raw in pattern.findall(text):
            values[name] = int(raw, 0)
    return values


def _named(prefix: str, stop: str | None = None) -> dict[int, str]:
    """Enumerators sharing a prefix, as {value: lower-case name without prefix}."""
    names: dict[int, str] = {}
    for name, value in constants().items():
        if name.startswith(prefix) and name != stop:
            names[value] = name[len(prefix) :].lower()
    return dict(sorted(names.items()))


_C = constants()
MAX_SLICES = _C["SAURON_MAX_SLICES"]
UNCLASSIFIED_SLICE = _C["SAURON_UNCLASSIFIED_SLICE"]
MAX_QFI = _C["SAURON_MAX_QFI"]
NO_QFI = _C["SAURON_NO_QFI"]
MAX_TEIDS = _C["SAURON_MAX_TEIDS"]
MAX_TEID_RANGES = _C["SAURON_MAX_TEID_RANGES"]
MAX_UE_SUBNETS = _C["SAURON_MAX_UE_SUBNETS"]
TEID_STATS_ENTRIES = _C["SAURON_TEID_STATS_ENTRIES"]
TEID_SLOTS = _C["SAURON_TEID_SLOTS"]
TEID_SLOT_BITS = _C["SAURON_TEID_SLOT_BITS"]
UE_STATS_ENTRIES = _C["SAURON_UE_STATS_ENTRIES"]
MAX_GTPU_EXT_HEADERS = _C["SAURON_MAX_GTPU_EXT_HEADERS"]
MAX_VLAN_TAGS = _C["SAURON_MAX_VLAN_TAGS"]
MAX_IPV6_EXT_HEADERS = _C["SAURON_MAX_IPV6_EXT_HEADERS"]
GTPU_PORT = _C["SAURON_GTPU_PORT"]
POINTS = _C["SAURON_POINTS"]
DIRS = _C["SAURON_DIRS"]
MSG_KINDS = _C["SAURON_MSG_KINDS"]
EVENTS = _C["SAURON_EVENTS"]
ANOMALY_FIRST = _C["SAURON_ANOMALY_FIRST"]

POINT_N3_INGRESS = _C["SAURON_POINT_N3_INGRESS"]
POINT_N3_EGRESS = _C["SAURON_POINT_N3_EGRESS"]
POINT_N6_INGRESS = _C["SAURON_POINT_N6_INGRESS"]
POINT_N6_EGRESS = _C["SAURON_POINT_N6_EGRESS"]
DIR_UPLINK = _C["SAURON_DIR_UPLINK"]
DIR_DOWNLINK = _C["SAURON_DIR_DOWNLINK"]
DIRMODE_POINT = _C["SAURON_DIRMODE_POINT"]
DIRMODE_UPLINK = _C["SAURON_DIRMODE_UPLINK"]
DIRMODE_DOWNLINK = _C["SAURON_DIRMODE_DOWNLINK"]
DIRMODE_AUTO = _C["SAURON_DIRMODE_AUTO"]
RES_HAS_SEQ = _C["SAURON_RES_HAS_SEQ"]
RES_HAS_UE = _C["SAURON_RES_HAS_UE"]
SESSION_HAS_UE = _C["SAURON_SESSION_HAS_UE"]
SESSION_VALID = _C["SAURON_SESSION_VALID"]

#: point id -> "n3_ingress", ...
POINT_NAMES = _named("SAURON_POINT_", stop="SAURON_POINTS")
#: direction id -> "uplink" / "downlink"
DIRECTION_NAMES = _named("SAURON_DIR_", stop="SAURON_DIRS")
#: message kind id -> "g_pdu", "echo_request", ...
MSG_KIND_NAMES = _named("SAURON_MSG_", stop="SAURON_MSG_KINDS")
#: frame category id -> "frames", "not_ip", "gtpu", ...
EVENT_NAMES = _named("SAURON_EV_")
#: anomaly id -> "eth_truncated", "gtpu_ext_zero_length", ...
ANOMALY_NAMES = _named("SAURON_AN_")


class SliceStats(ctypes.Structure):
    _fields_ = [
        ("packets", ctypes.c_uint64),
        ("bytes", ctypes.c_uint64),
        ("inner_bytes", ctypes.c_uint64),
        ("malformed", ctypes.c_uint64),
        ("msg", ctypes.c_uint64 * MSG_KINDS),
    ]


class Traffic(ctypes.Structure):
    _fields_ = [("packets", ctypes.c_uint64), ("bytes", ctypes.c_uint64)]


class SessionStats(ctypes.Structure):
    _fields_ = [
        ("packets", ctypes.c_uint64 * DIRS),
        ("bytes", ctypes.c_uint64 * DIRS),
        ("slice_id", ctypes.c_uint32),
        ("rules_generation", ctypes.c_uint32),
        ("qfi", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("ue_addr", ctypes.c_uint8 * 16),
    ]


class TeidSlot(ctypes.Structure):
    _fields_ = [
        ("teid", ctypes.c_uint32),
        ("rules_generation", ctypes.c_uint32),
        ("slice_id", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("qfi", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32),
        ("packets", ctypes.c_uint64 * DIRS),
        ("bytes", ctypes.c_uint64 * DIRS),
        ("ue_addr", ctypes.c_uint8 * 16),
    ]


class TeidRangeKey(ctypes.Structure):
    _fields_ = [("prefixlen", ctypes.c_uint32), ("teid", ctypes.c_uint32)]


class Ipv4LpmKey(ctypes.Structure):
    _fields_ = [("prefixlen", ctypes.c_uint32), ("addr", ctypes.c_uint32)]


class Ipv6LpmKey(ctypes.Structure):
    _fields_ = [("prefixlen", ctypes.c_uint32), ("addr", ctypes.c_uint8 * 16)]


class UeKey(ctypes.Structure):
    _fields_ = [("addr", ctypes.c_uint8 * 16)]


class Config(ctypes.Structure):
    _fields_ = [
        ("direction_mode", ctypes.c_uint32 * POINTS),
        ("rules_generation", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32),
    ]


class ParseResult(ctypes.Structure):
    _fields_ = [
        ("event", ctypes.c_uint32),
        ("anomaly", ctypes.c_uint32),
        ("teid", ctypes.c_uint32),
        ("slice_id", ctypes.c_uint32),
        ("direction", ctypes.c_uint32),
        ("msg_kind", ctypes.c_uint32),
        ("qfi", ctypes.c_uint32),
        ("pdu_type", ctypes.c_uint32),
        ("inner_proto", ctypes.c_uint32),
        ("inner_sport", ctypes.c_uint16),
        ("inner_dport", ctypes.c_uint16),
        ("ext_headers", ctypes.c_uint32),
        ("gtp_seq", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("ue_addr", ctypes.c_uint8 * 16),
    ]


#: map name -> (key type, value type) for the maps user space decodes
MAP_LAYOUTS: dict[str, tuple[type[Any], type[Any]]] = {
    "slice_stats": (ctypes.c_uint32, SliceStats),
    "qfi_stats": (ctypes.c_uint32, Traffic),
    "events": (ctypes.c_uint32, ctypes.c_uint64),
    "teid_stats": (ctypes.c_uint32, SessionStats),
    "ue_stats": (UeKey, SessionStats),
    "teid_slots": (ctypes.c_uint32, TeidSlot),
    "teid_slice": (ctypes.c_uint32, ctypes.c_uint32),
    "teid_range_slice": (TeidRangeKey, ctypes.c_uint32),
    "ue4_slice": (Ipv4LpmKey, ctypes.c_uint32),
    "ue6_slice": (Ipv6LpmKey, ctypes.c_uint32),
    "qfi_slice": (ctypes.c_uint32, ctypes.c_uint32),
    "config": (ctypes.c_uint32, Config),
}


def slice_stats_index(point: int, slice_id: int, direction: int) -> int:
    return (point * MAX_SLICES + slice_id) * DIRS + direction


def qfi_stats_index(point: int, slice_id: int, qfi: int, direction: int) -> int:
    return ((point * MAX_SLICES + slice_id) * MAX_QFI + qfi) * DIRS + direction


def event_index(point: int, event: int) -> int:
    return point * EVENTS + event
