"""Session activity over one interval: which TEIDs or UE addresses carried
packets, per slice, and the ones that carried the most bytes."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import overload

import numpy as np
import numpy.typing as npt

from sauron.abi import layout
from sauron.bpf.session_table import SessionTable

UL, DL = layout.DIR_UPLINK, layout.DIR_DOWNLINK
U64 = npt.NDArray[np.uint64]

#: sessions kept per slice and kind; what the top-sessions route can return
TOP_SESSIONS = 100


def ue_address_text(addr: bytes) -> str:
    """A UE address as the maps hold it (IPv6, IPv4 mapped) in its usual form."""
    ip = ipaddress.IPv6Address(addr)
    return str(ip.ipv4_mapped) if ip.ipv4_mapped else str(ip)


@dataclass(frozen=True)
class SessionVolume:
    """What one session carried in one interval."""

    teid: int | None  # None for a UE-address session
    ue_address: str | None
    qfi: int | None
    uplink_packets: int
    downlink_packets: int
    uplink_bytes: int
    downlink_bytes: int

    @property
    def bytes(self) -> int:
        return self.uplink_bytes + self.downlink_bytes


class RankedSessions(Sequence[SessionVolume]):
    """One slice's busiest sessions of an interval, most bytes first. A
    SessionVolume is made only when asked for: each interval ranks every
    slice's sessions, but only a query or the publisher's few read them."""

    def __init__(
        self,
        table: SessionTable,
        rows: npt.NDArray[np.intp],
        packets: U64,
        octets: U64,
        by_teid: bool,
    ) -> None:
        self._table = table
        self._rows = rows
        self._packets = packets  # (len(rows), 2), the ranked rows' growth
        self._octets = octets
        self._by_teid = by_teid

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> SessionVolume: ...
    @overload
    def __getitem__(self, index: slice) -> list[SessionVolume]: ...
    def __getitem__(self, index: int | slice) -> SessionVolume | list[SessionVolume]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return _volume(
            self._table,
            int(self._rows[index]),
            self._packets[index],
            self._octets[index],
            self._by_teid,
        )


@dataclass
class SessionActivity:
    #: slice id -> sessions whose counters moved
    active: dict[int, int] = field(default_factory=dict)
    #: slice id -> up to TOP_SESSIONS sessions, most bytes first
    top: dict[int, Sequence[SessionVolume]] = field(default_factory=dict)


def _grown(now: U64, before: U64, seen: npt.NDArray[np.bool_]) -> U64:
    """`delta` over columns: a counter that went down, or a session not seen
    before, counts from zero."""
    before = np.where(seen[:, None], before, 0).astype(np.uint64)
    return np.where(now >= before, now - before, now)


def _qfi(raw: int) -> int | None:
    """The session's last QFI; the kernel's "no PDU Session Container"
    value means none was seen (a downlink G-PDU sent without a QER carries
    none), shown as null, never as the internal value."""
    return None if raw == layout.NO_QFI else raw


def _volume(
    table: SessionTable, row: int, packets: U64, octets: U64, by_teid: bool
) -> SessionVolume:
    """Session `row` of the table, its growth `packets` and `octets` (UL, DL)."""
    if by_teid:
        teid: int | None = int.from_bytes(bytes(table.keys[row]), "little")
        ue = ue_address_text(table.ue_addr[row].tobytes()) if table.has_ue[row] else None
    else:
        teid, ue = None, ue_address_text(bytes(table.keys[row]))
    return SessionVolume(
        teid=teid,
        ue_address=ue,
        qfi=_qfi(int(table.qfi[row])) if by_teid else None,
        uplink_packets=int(packets[UL]),
        downlink_packets=int(packets[DL]),
        uplink_bytes=int(octets[UL]),
        downlink_bytes=int(octets[DL]),
    )


def session_activity(
    previous: SessionTable, current: SessionTable, by_teid: bool, top_n: int = TOP_SESSIONS
) -> SessionActivity:
    """A session missing from the previous reading, or whose counts went
    down (evicted and seen anew), counts from zero."""
    rows, seen = previous.index_of(current.keys)
    if len(previous) == 0:
        old_packets = old_bytes = np.zeros((len(current), 2), np.uint64)
    else:
        old_packets, old_bytes = previous.packets[rows], previous.bytes[rows]
    packets = _grown(current.packets, old_packets, seen)
    octets = _grown(current.bytes, old_bytes, seen)
    moved = np.flatnonzero((packets > 0).any(axis=1))
    volume = octets[moved].sum(axis=1, dtype=np.uint64)
    result = SessionActivity()
    slice_of = current.slice_id[moved]
    for slice_id in np.unique(slice_of):
        mine = slice_of == slice_id
        result.active[int(slice_id)] = int(mine.sum())
        ranked = moved[mine][np.argsort(volume[mine])[::-1][:top_n]]  # most bytes first
        result.top[int(slice_id)] = RankedSessions(
            current, ranked, packets[ranked], octets[ranked], by_teid
        )
    return result
