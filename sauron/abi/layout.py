"""The Python view of sauron/bpf/c/include/sauron_shared.h.

Constants and enum values are read from the header itself, so the header is
their only owner. The ctypes structures mirror its structs; a test holds them
against the types clang builds from the same header.
"""

from __future__ import annotations

import ctypes
from functools import cache
from typing import Any

from sauron.abi import header, points
from sauron.abi.source import shared_header


@cache
def constants() -> dict[str, int]:
    """Every SAURON_* #define and enumerator of the shared header, with the
    ids and counts its attach point table gives (SAURON_POINT_<name>,
    SAURON_POINTS, SAURON_QFI_POINTS)."""
    return {**header.constants(shared_header()), **points.constants()}


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
MAX_UE_RULES = _C["SAURON_MAX_UE_RULES"]
TEID_STATS_ENTRIES = _C["SAURON_TEID_STATS_ENTRIES"]
TEID_SLOTS = _C["SAURON_TEID_SLOTS"]
TEID_SLOT_BITS = _C["SAURON_TEID_SLOT_BITS"]
UE_SLOTS = _C["SAURON_UE_SLOTS"]
UE_STATS_ENTRIES = _C["SAURON_UE_STATS_ENTRIES"]
MAX_GTPU_EXT_HEADERS = _C["SAURON_MAX_GTPU_EXT_HEADERS"]
MAX_VLAN_TAGS = _C["SAURON_MAX_VLAN_TAGS"]
MAX_IPV6_EXT_HEADERS = _C["SAURON_MAX_IPV6_EXT_HEADERS"]
GTPU_PORT = _C["SAURON_GTPU_PORT"]
POINTS = _C["SAURON_POINTS"]
#: the points with rows in qfi_stats (those that see QFIs)
QFI_POINTS = _C["SAURON_QFI_POINTS"]
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

MEASURE_TRANSIT = _C["SAURON_MEASURE_TRANSIT"]
MEASURE_RTT = _C["SAURON_MEASURE_RTT"]
MEASURE_SEQUENCE = _C["SAURON_MEASURE_SEQUENCE"]
MEASURE_RETRANS = _C["SAURON_MEASURE_RETRANS"]
MEASURE_EVIDENCE = _C["SAURON_MEASURE_EVIDENCE"]
SLICE_TRANSIT = _C["SAURON_SLICE_TRANSIT"]
SLICE_EVIDENCE = _C["SAURON_SLICE_EVIDENCE"]
EVIDENCE_SNAPLEN = _C["SAURON_EVIDENCE_SNAPLEN"]
EVIDENCE_RING_PAGES = _C["SAURON_EVIDENCE_RING_PAGES"]
HIST_SUB_BITS = _C["SAURON_HIST_SUB_BITS"]
HIST_SUB_BUCKETS = _C["SAURON_HIST_SUB_BUCKETS"]
LATENCY_MIN_SHIFT = _C["SAURON_LATENCY_MIN_SHIFT"]
LATENCY_MAX_SHIFT = _C["SAURON_LATENCY_MAX_SHIFT"]
LATENCY_BUCKETS = _C["SAURON_LATENCY_BUCKETS"]
GAP_MIN_SHIFT = _C["SAURON_GAP_MIN_SHIFT"]
GAP_MAX_SHIFT = _C["SAURON_GAP_MAX_SHIFT"]
GAP_BUCKETS = _C["SAURON_GAP_BUCKETS"]
LAT_TRANSIT = _C["SAURON_LAT_TRANSIT"]
LAT_RAN_RTT = _C["SAURON_LAT_RAN_RTT"]
LAT_DN_RTT = _C["SAURON_LAT_DN_RTT"]
LAT_METRICS = _C["SAURON_LAT_METRICS"]
TRANSIT_STAMPS = _C["SAURON_TRANSIT_STAMPS"]
TRANSIT_FREE = _C["SAURON_TRANSIT_FREE"]
TRANSIT_PENDING = _C["SAURON_TRANSIT_PENDING"]
TRANSIT_PHASE = _C["SAURON_TRANSIT_PHASE"]
TRANSIT_EXPIRE_BATCH = _C["SAURON_TRANSIT_EXPIRE_BATCH"]
SEQ_ENTRIES = _C["SAURON_SEQ_ENTRIES"]
SEQ_WINDOW = _C["SAURON_SEQ_WINDOW"]
SEQ_MAX_DROPOUT = _C["SAURON_SEQ_MAX_DROPOUT"]
SEQ_MAX_MISORDER = _C["SAURON_SEQ_MAX_MISORDER"]
RTT_STAMPS = _C["SAURON_RTT_STAMPS"]
TCP_FLOWS = _C["SAURON_TCP_FLOWS"]
ECHO_STAMPS = _C["SAURON_ECHO_STAMPS"]
MAX_PEERS = _C["SAURON_MAX_PEERS"]
ECHO_LOCAL = _C["SAURON_ECHO_LOCAL"]
ECHO_PEER = _C["SAURON_ECHO_PEER"]
MSG_G_PDU = _C["SAURON_MSG_G_PDU"]
MSG_NOT_GTPU = _C["SAURON_MSG_NOT_GTPU"]
EV_FRAMES = _C["SAURON_EV_FRAMES"]
EV_GTPU = _C["SAURON_EV_GTPU"]
EV_IP = _C["SAURON_EV_IP"]

#: point id -> "n3_ingress", ... (sauron.abi.points has the rest of each row)
POINT_NAMES = {p.id: p.name for p in points.POINTS}
#: direction id -> "uplink" / "downlink"
DIRECTION_NAMES = _named("SAURON_DIR_", stop="SAURON_DIRS")
#: message kind id -> "g_pdu", "echo_request", ...
MSG_KIND_NAMES = _named("SAURON_MSG_", stop="SAURON_MSG_KINDS")
#: frame category id -> "frames", "not_ip", "gtpu", ...
EVENT_NAMES = _named("SAURON_EV_")
#: anomaly id -> "eth_truncated", "gtpu_ext_zero_length", ...
ANOMALY_NAMES = _named("SAURON_AN_")
#: latency metric id -> "transit", "ran_rtt", ... (the KPI names, sauron.abi.kpis)
LATENCY_METRIC_NAMES = _named("SAURON_LAT_", stop="SAURON_LAT_METRICS")
#: RTT stamp kind -> "ran_timestamp", ...
RTT_KIND_NAMES = _named("SAURON_RTT_")
#: security check kind -> "ue_source_spoofed", "unknown_teid", ...
SECURITY_KIND_NAMES = _named("SAURON_SEC_", stop="SAURON_SEC_KINDS")
SEC_KINDS = _C["SAURON_SEC_KINDS"]
SEC_UE_SOURCE_SPOOFED = _C["SAURON_SEC_UE_SOURCE_SPOOFED"]
SEC_UNKNOWN_TEID = _C["SAURON_SEC_UNKNOWN_TEID"]
SEC_GTP_IN_GTP = _C["SAURON_SEC_GTP_IN_GTP"]
SEC_INNER_TO_CORE = _C["SAURON_SEC_INNER_TO_CORE"]
SEC_UNKNOWN_PEER = _C["SAURON_SEC_UNKNOWN_PEER"]
MEASURE_SECURITY = _C["SAURON_MEASURE_SECURITY"]
MEASURE_PEERS = _C["SAURON_MEASURE_PEERS"]
MEASURE_PROTECTED = _C["SAURON_MEASURE_PROTECTED"]
TEID_SESSION_V4 = _C["SAURON_TEID_SESSION_V4"]
TEID_SESSION_V6 = _C["SAURON_TEID_SESSION_V6"]
MAX_KNOWN_PEERS = _C["SAURON_MAX_KNOWN_PEERS"]
MAX_PROTECTED = _C["SAURON_MAX_PROTECTED"]
SECURITY_SEEN_ENTRIES = _C["SAURON_SECURITY_SEEN_ENTRIES"]


class SliceStats(ctypes.Structure):
    _fields_ = [
        ("packets", ctypes.c_uint64),
        ("bytes", ctypes.c_uint64),
        ("inner_bytes", ctypes.c_uint64),
        ("malformed", ctypes.c_uint64),
        ("msg", ctypes.c_uint64 * MSG_KINDS),
        ("reserved", ctypes.c_uint64 * 5),
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
        ("slice_id", ctypes.c_uint8),
        ("qfi", ctypes.c_uint8),
        ("flags", ctypes.c_uint16),
        ("peer4", ctypes.c_uint32),
        ("packets", ctypes.c_uint64 * DIRS),
        ("bytes", ctypes.c_uint64 * DIRS),
        ("ue_addr", ctypes.c_uint8 * 16),
    ]


class UeSlot(ctypes.Structure):
    _fields_ = [
        ("ue_addr", ctypes.c_uint8 * 16),
        ("rules_generation", ctypes.c_uint32),
        ("slice_id", ctypes.c_uint8),
        ("reserved8", ctypes.c_uint8),
        ("flags", ctypes.c_uint16),
        ("reserved", ctypes.c_uint64),
        ("packets", ctypes.c_uint64 * DIRS),
        ("bytes", ctypes.c_uint64 * DIRS),
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
        ("measure", ctypes.c_uint32),
        ("transit_lookup_mask", ctypes.c_uint32),
        ("rtt_ts_mask", ctypes.c_uint32),
        ("transit_expiry_ns", ctypes.c_uint64),
    ]


class SliceConfig(ctypes.Structure):
    _fields_ = [("transit_sample_mask", ctypes.c_uint32), ("flags", ctypes.c_uint32)]


class Evidence(ctypes.Structure):
    """One record of evidence_ring: a frame's first bytes and whose it is."""

    _fields_ = [
        ("time_ns", ctypes.c_uint64),
        ("frame_len", ctypes.c_uint32),
        ("slice_id", ctypes.c_uint32),
        ("teid", ctypes.c_uint32),
        ("captured", ctypes.c_uint16),
        ("point", ctypes.c_uint8),
        ("direction", ctypes.c_uint8),
        ("data", ctypes.c_uint8 * EVIDENCE_SNAPLEN),
    ]


class LatencyHist(ctypes.Structure):
    _fields_ = [
        ("count", ctypes.c_uint64),
        ("sum_ns", ctypes.c_uint64),
        ("max_ns", ctypes.c_uint64),
        ("buckets", ctypes.c_uint64 * LATENCY_BUCKETS),
    ]


class Fingerprint(ctypes.Structure):
    _fields_ = [
        ("remote", ctypes.c_uint8 * 16),
        ("remote_port", ctypes.c_uint16),
        ("proto", ctypes.c_uint8),
        ("direction", ctypes.c_uint8),
        ("ip_id", ctypes.c_uint32),
        ("length", ctypes.c_uint32),
        ("l4_a", ctypes.c_uint32),
        ("l4_b", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32),
    ]


class Stamp(ctypes.Structure):
    _fields_ = [
        ("ns", ctypes.c_uint64),
        ("slice_id", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32),
    ]


class TransitSlot(ctypes.Structure):
    _fields_ = [
        ("state", ctypes.c_uint64),
        ("ns", ctypes.c_uint64),
        ("fp", Fingerprint),
        ("slice_id", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32),
    ]


class MeasureStats(ctypes.Structure):
    _fields_ = [
        ("transit_stamped", ctypes.c_uint64),
        ("transit_matched", ctypes.c_uint64),
        ("transit_duplicate", ctypes.c_uint64),
        ("transit_table_full", ctypes.c_uint64),
        ("transit_late", ctypes.c_uint64),
        ("transit_aggregate", ctypes.c_uint64),
        ("transit_expired", ctypes.c_uint64),
        ("tcp_data_segments", ctypes.c_uint64),
        ("tcp_retransmissions", ctypes.c_uint64),
        ("rtt_stamped", ctypes.c_uint64),
        ("rtt_samples", ctypes.c_uint64),
        ("seq_received", ctypes.c_uint64),
        ("seq_lost", ctypes.c_uint64),
        ("seq_reordered", ctypes.c_uint64),
        ("seq_duplicates", ctypes.c_uint64),
        ("seq_resyncs", ctypes.c_uint64),
        ("seq_gaps", ctypes.c_uint64 * GAP_BUCKETS),
    ]


class SeqKey(ctypes.Structure):
    _fields_ = [
        ("teid", ctypes.c_uint32),
        ("direction", ctypes.c_uint32),
        ("receiver", ctypes.c_uint8 * 16),
    ]


class SeqState(ctypes.Structure):
    _fields_ = [
        ("received", ctypes.c_uint64),
        ("lost", ctypes.c_uint64),
        ("reordered", ctypes.c_uint64),
        ("duplicates", ctypes.c_uint64),
        ("window", ctypes.c_uint64),
        ("expected", ctypes.c_uint32),
        ("slice_id", ctypes.c_uint32),
        ("gap_start", ctypes.c_uint32),
        ("gap_length", ctypes.c_uint32),
    ]


class RttKey(ctypes.Structure):
    _fields_ = [
        ("local", ctypes.c_uint8 * 16),
        ("remote", ctypes.c_uint8 * 16),
        ("local_port", ctypes.c_uint16),
        ("remote_port", ctypes.c_uint16),
        ("echo", ctypes.c_uint32),
        ("kind", ctypes.c_uint32),
    ]


class FlowKey(ctypes.Structure):
    _fields_ = [
        ("saddr", ctypes.c_uint8 * 16),
        ("daddr", ctypes.c_uint8 * 16),
        ("sport", ctypes.c_uint16),
        ("dport", ctypes.c_uint16),
    ]


class FlowState(ctypes.Structure):
    _fields_ = [("next_seq", ctypes.c_uint32), ("slice_id", ctypes.c_uint32)]


class EchoKey(ctypes.Structure):
    _fields_ = [
        ("peer", ctypes.c_uint8 * 16),
        ("seq", ctypes.c_uint32),
        ("initiator", ctypes.c_uint32),
    ]


class PeerKey(ctypes.Structure):
    _fields_ = [
        ("peer", ctypes.c_uint8 * 16),
        ("initiator", ctypes.c_uint32),
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
        ("security", ctypes.c_uint32),
        ("peer", ctypes.c_uint8 * 16),
    ]


class TeidSession(ctypes.Structure):
    _fields_ = [
        ("flags", ctypes.c_uint32),
        ("ue6_prefixlen", ctypes.c_uint32),
        ("ue4", ctypes.c_uint8 * 4),
        ("ue6", ctypes.c_uint8 * 16),
    ]


class SecuritySeenKey(ctypes.Structure):
    _fields_ = [
        ("kind", ctypes.c_uint32),
        ("teid", ctypes.c_uint32),
        ("addr", ctypes.c_uint8 * 16),
    ]


class SecuritySeen(ctypes.Structure):
    _fields_ = [
        ("first_ns", ctypes.c_uint64),
        ("last_ns", ctypes.c_uint64),
        ("count", ctypes.c_uint64),
        ("slice_id", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32),
        ("peer", ctypes.c_uint8 * 16),
    ]


#: map name -> (key type, value type) for the maps user space decodes
MAP_LAYOUTS: dict[str, tuple[type[Any], type[Any]]] = {
    "slice_stats": (ctypes.c_uint32, SliceStats),
    "qfi_stats": (ctypes.c_uint32, Traffic),
    "events": (ctypes.c_uint32, ctypes.c_uint64),
    "teid_stats": (ctypes.c_uint32, SessionStats),
    "ue_stats": (UeKey, SessionStats),
    "teid_slots": (ctypes.c_uint32, TeidSlot),
    "ue_slots": (ctypes.c_uint32, UeSlot),
    "teid_slice": (ctypes.c_uint32, ctypes.c_uint32),
    "teid_range_slice": (TeidRangeKey, ctypes.c_uint32),
    "ue4_slice": (Ipv4LpmKey, ctypes.c_uint32),
    "ue6_slice": (Ipv6LpmKey, ctypes.c_uint32),
    "qfi_slice": (ctypes.c_uint32, ctypes.c_uint32),
    "config": (ctypes.c_uint32, Config),
    "slice_config": (ctypes.c_uint32, SliceConfig),
    "latency_hist": (ctypes.c_uint32, LatencyHist),
    "measure_stats": (ctypes.c_uint32, MeasureStats),
    "transit_slots": (ctypes.c_uint32, TransitSlot),
    "seq_state": (SeqKey, SeqState),
    "rtt_stamps": (RttKey, Stamp),
    "tcp_flows": (FlowKey, FlowState),
    "echo_stamps": (EchoKey, Stamp),
    "peer_rtt": (PeerKey, LatencyHist),
    "security_stats": (ctypes.c_uint32, ctypes.c_uint64),
    "teid_session": (ctypes.c_uint32, TeidSession),
    "known_peers": (UeKey, ctypes.c_uint32),
    "protected4": (Ipv4LpmKey, ctypes.c_uint32),
    "protected6": (Ipv6LpmKey, ctypes.c_uint32),
    "security_seen": (SecuritySeenKey, SecuritySeen),
}


# Per-slice maps are slice-major: these are the rows of one slice, so the
# first `slices * rows` entries hold slice ids 0 .. slices - 1.
SLICE_STATS_ROWS = POINTS * DIRS
QFI_STATS_ROWS = QFI_POINTS * MAX_QFI * DIRS
LATENCY_ROWS = LAT_METRICS * DIRS
MEASURE_ROWS = DIRS


def slice_stats_index(point: int, slice_id: int, direction: int) -> int:
    return (slice_id * POINTS + point) * DIRS + direction


def qfi_stats_index(point: int, slice_id: int, qfi: int, direction: int) -> int:
    """The qfi_stats index at a point that sees QFIs (ValueError for one
    that sees none)."""
    row = points.point(point).qfi_row
    if row is None:
        raise ValueError(f"{POINT_NAMES[point]} sees no QFIs: it has no qfi_stats rows")
    return ((slice_id * QFI_POINTS + row) * MAX_QFI + qfi) * DIRS + direction


def event_index(point: int, event: int) -> int:
    return point * EVENTS + event


def latency_index(metric: int, slice_id: int, direction: int) -> int:
    return (slice_id * LAT_METRICS + metric) * DIRS + direction


def measure_index(slice_id: int, direction: int) -> int:
    return slice_id * DIRS + direction
