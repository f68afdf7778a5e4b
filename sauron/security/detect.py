"""Detections over the data path's security observations: a TEID scan (one
outer source sending to many distinct unknown TEIDs within a second) and a
spoofing UE (one session sending from many sources it does not own within a
second). One function for the agent's intervals and for a replay, which
gives each observation the capture's own time."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sauron.abi import layout
from sauron.security.thresholds import SCAN_THRESHOLD, SPOOF_THRESHOLD, WINDOW_S

TEID_SCAN, SPOOFING_UE = "teid_scan", "spoofing_ue"
#: TEIDs an event lists (the first ones seen)
LISTED = 8


@dataclass(frozen=True)
class Observation:
    """A kind seen for one TEID and address: the outer source of an unknown
    TEID's frames, or a spoofed inner source."""

    kind: int  # layout.SEC_*
    teid: int
    address: str
    peer: str  # the outer source
    slice_id: int
    first_s: float
    last_s: float
    count: int


@dataclass(frozen=True)
class SecurityEvent:
    kind: str
    slice_id: int
    peer: str
    teids: tuple[int, ...]
    first_seen: float
    last_seen: float
    #: frames of the detection
    count: int
    #: distinct TEIDs (a scan) or sources (a spoofing UE)
    distinct: int


def _windowed(rows: list[Observation], threshold: int, distinct_of: str) -> list[Observation]:
    """The rows of the first window of WINDOW_S holding `threshold`
    distinct values of `distinct_of`, grown by every row after it; none
    when no window holds that many."""
    rows = sorted(rows, key=lambda r: r.first_s)
    for start, first in enumerate(rows):
        inside = [r for r in rows[start:] if r.first_s - first.first_s <= WINDOW_S]
        if len({getattr(r, distinct_of) for r in inside}) >= threshold:
            return rows[start:]
    return []


def _event(kind: str, rows: list[Observation], distinct_of: str) -> SecurityEvent:
    slices: defaultdict[int, int] = defaultdict(int)
    for r in rows:
        slices[r.slice_id] += r.count
    teids: list[int] = []
    for r in rows:
        if r.teid not in teids:
            teids.append(r.teid)
    return SecurityEvent(
        kind=kind,
        slice_id=max(slices, key=lambda s: slices[s]),
        peer=rows[-1].peer,
        teids=tuple(teids[:LISTED]),
        first_seen=min(r.first_s for r in rows),
        last_seen=max(r.last_s for r in rows),
        count=sum(r.count for r in rows),
        distinct=len({getattr(r, distinct_of) for r in rows}),
    )


def detect(
    observations: Iterable[Observation],
    scan_threshold: int = SCAN_THRESHOLD,
    spoof_threshold: int = SPOOF_THRESHOLD,
) -> list[SecurityEvent]:
    """Every scan (per outer source) and spoofing UE (per TEID) the
    observations hold, oldest first."""
    scans: defaultdict[str, list[Observation]] = defaultdict(list)
    spoofs: defaultdict[int, list[Observation]] = defaultdict(list)
    for o in observations:
        if o.kind == layout.SEC_UNKNOWN_TEID:
            scans[o.address].append(o)
        elif o.kind == layout.SEC_UE_SOURCE_SPOOFED:
            spoofs[o.teid].append(o)
    events = [
        _event(TEID_SCAN, rows, "teid")
        for rows in (_windowed(r, scan_threshold, "teid") for r in scans.values())
        if rows
    ]
    events += [
        _event(SPOOFING_UE, rows, "address")
        for rows in (_windowed(r, spoof_threshold, "address") for r in spoofs.values())
        if rows
    ]
    return sorted(events, key=lambda e: (e.first_seen, e.kind, e.peer))
