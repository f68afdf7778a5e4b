"""The per-session tables (TEIDs on N3/N9, UE addresses on N6) read as
columns: one batch system call per table, its slots read in place, every
CPU's slot of a session merged with the table's entry by numpy, so a
reading of 100 000 sessions costs milliseconds, not a Python object per
copy."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from sauron.abi import layout
from sauron.bpf import libbpf
from sauron.bpf.mapped import MappedArray

U64 = npt.NDArray[np.uint64]
U32 = npt.NDArray[np.uint32]
UE_ADDR_BYTES = 16


def _ordered(keys: npt.NDArray[np.void]) -> npt.NDArray[Any]:
    """Keys in a form numpy sorts quickly, in the same order as their bytes:
    4- and 8-byte keys as the big-endian integers they spell (a TEID key),
    converted to native integers (a sort or search on a byte-swapped dtype
    swaps on every comparison); others as bytes."""
    size = keys.dtype.itemsize
    return keys.view(f">u{size}").astype(f"u{size}") if size in (4, 8) else keys


def _stable_order(keys: npt.NDArray[Any]) -> npt.NDArray[np.intp]:
    """argsort(keys, kind="stable"), faster for 4-byte keys: each key
    widened with its position is unique, so a plain sort of those pairs
    gives the stable order (a stable sort of the keys alone is a merge sort,
    more than twice as slow)."""
    if keys.dtype == np.uint32:
        pairs = (keys.astype(np.uint64) << np.uint64(32)) | np.arange(len(keys), dtype=np.uint64)
        order: npt.NDArray[np.intp] = (np.sort(pairs) & np.uint64(0xFFFFFFFF)).astype(np.intp)
        return order
    return np.argsort(keys, kind="stable")


@dataclass(slots=True)
class Session:
    """A TEID's or UE address's counters merged over CPUs."""

    key: bytes
    slice_id: int
    qfi: int
    ue_addr: bytes | None = None
    packets: list[int] = field(default_factory=lambda: [0, 0])
    bytes: list[int] = field(default_factory=lambda: [0, 0])


def row_dtype(ctype: type[ctypes.Structure], stride: int) -> np.dtype[Any]:
    """The numpy view of a ctypes structure, `stride` bytes apart: numpy
    takes names, offsets and types from ctypes itself, so the C header stays
    the one owner of the layout."""
    base = np.dtype(ctype)
    assert base.fields is not None
    return np.dtype(
        {
            "names": list(base.names or ()),
            "formats": [base.fields[n][0] for n in base.names or ()],
            "offsets": [base.fields[n][1] for n in base.names or ()],
            "itemsize": stride,
        }
    )


SESSION_DTYPE = row_dtype(layout.SessionStats, ctypes.sizeof(layout.SessionStats))
SLOT_DTYPE = row_dtype(layout.TeidSlot, ctypes.sizeof(layout.TeidSlot))
UE_SLOT_DTYPE = row_dtype(layout.UeSlot, ctypes.sizeof(layout.UeSlot))
assert layout.DIRS == 2, "Session holds two directions"


class SessionTable:
    """Sessions as columns, one row per key, sorted by key (so two readings
    are matched with a binary search). Iterating yields `Session` objects,
    for the few places that want them one by one."""

    __slots__ = ("bytes", "has_ue", "keys", "packets", "qfi", "slice_id", "ue_addr")

    def __init__(
        self,
        keys: npt.NDArray[np.void],
        packets: U64,
        octets: U64,
        slice_id: U32,
        qfi: U32,
        ue_addr: npt.NDArray[np.uint8],
        has_ue: npt.NDArray[np.bool_],
    ) -> None:
        self.keys = keys
        self.packets = packets  # (n, 2): uplink, downlink
        self.bytes = octets  # (n, 2)
        self.slice_id = slice_id
        self.qfi = qfi
        self.ue_addr = ue_addr  # (n, 16)
        self.has_ue = has_ue

    @classmethod
    def empty(cls, key_size: int) -> SessionTable:
        return cls(
            np.empty(0, dtype=f"V{key_size}"),
            np.zeros((0, 2), np.uint64),
            np.zeros((0, 2), np.uint64),
            np.zeros(0, np.uint32),
            np.zeros(0, np.uint32),
            np.zeros((0, UE_ADDR_BYTES), np.uint8),
            np.zeros(0, np.bool_),
        )

    def __len__(self) -> int:
        return len(self.keys)

    def session(self, i: int) -> Session:
        return Session(
            key=bytes(self.keys[i]),
            slice_id=int(self.slice_id[i]),
            qfi=int(self.qfi[i]),
            ue_addr=self.ue_addr[i].tobytes() if self.has_ue[i] else None,
            packets=[int(v) for v in self.packets[i]],
            bytes=[int(v) for v in self.bytes[i]],
        )

    def __iter__(self) -> Iterator[Session]:
        return (self.session(i) for i in range(len(self)))

    def index_of(
        self, keys: npt.NDArray[np.void]
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
        """For each key: its row here and whether it is here at all."""
        if len(self) == 0:
            return np.zeros(len(keys), np.intp), np.zeros(len(keys), np.bool_)
        rows = np.minimum(np.searchsorted(_ordered(self.keys), _ordered(keys)), len(self) - 1)
        return rows, self.keys[rows] == keys


@dataclass
class _Columns:
    """Session copies as columns, one row a copy."""

    keys: npt.NDArray[np.void]
    packets: U64  # (n, 2)
    octets: U64  # (n, 2)
    slice_id: U32
    generation: U32
    qfi: U32
    flags: U32
    ue_addr: npt.NDArray[np.uint8]  # (n, 16)

    @classmethod
    def of(cls, keys: npt.NDArray[np.void], rows: npt.NDArray[np.void], **fixed: int) -> _Columns:
        """Structured rows of a table or slots; `fixed` gives the fields
        they keep none of (a UE slot has no QFI, and always its UE)."""

        def column(name: str, dtype: Any) -> Any:
            if name in fixed:
                return np.full(len(rows), fixed[name], dtype)
            return np.ascontiguousarray(rows[name], dtype)

        return cls(
            keys=keys,
            packets=column("packets", np.uint64),
            octets=column("bytes", np.uint64),
            slice_id=column("slice_id", np.uint32),
            generation=column("rules_generation", np.uint32),
            qfi=column("qfi", np.uint32),
            flags=column("flags", np.uint32),
            ue_addr=column("ue_addr", np.uint8),
        )


@dataclass
class SessionCopies:
    """Every copy of the sessions (table entries, every CPU's slots), not
    yet merged."""

    parts: list[_Columns] = field(default_factory=list)

    def add(self, keys: npt.NDArray[np.void], rows: npt.NDArray[np.void], **fixed: int) -> None:
        self.parts.append(_Columns.of(keys, rows, **fixed))

    def merge(self, key_size: int) -> SessionTable:
        """Sums each key's copies; its slice, QFI and UE address come from
        the copy classified under the newest rules, then the busiest. One
        sort by key, the rest linear over plain columns."""
        if not any(len(p.keys) for p in self.parts):
            return SessionTable.empty(key_size)

        def joined(name: str) -> Any:
            return np.concatenate([getattr(p, name) for p in self.parts])

        ordered = _ordered(joined("keys"))
        order = _stable_order(ordered)
        ordered = ordered[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        packets, octets = joined("packets")[order], joined("octets")[order]
        best = order[_best_of_groups(joined("generation")[order], packets, starts)]
        return SessionTable(
            keys=joined("keys")[order[starts]],
            packets=np.add.reduceat(packets, starts, axis=0),
            octets=np.add.reduceat(octets, starts, axis=0),
            slice_id=joined("slice_id")[best],
            qfi=joined("qfi")[best],
            ue_addr=joined("ue_addr")[best],
            has_ue=(joined("flags")[best] & layout.SESSION_HAS_UE) != 0,
        )


def _best_of_groups(
    generation: U32, packets: U64, starts: npt.NDArray[np.intp]
) -> npt.NDArray[np.intp]:
    """For copies grouped by key (groups begin at `starts`), the copy of each
    group with the newest rules generation, then the most packets, then the
    last: segment maxima instead of a sort."""
    n = len(generation)
    sizes = np.diff(np.r_[starts, n])
    if (sizes == 1).all():
        return starts
    gen = generation.astype(np.uint64)
    newest = gen == np.repeat(np.maximum.reduceat(gen, starts), sizes)
    busy = np.where(newest, packets.sum(axis=1, dtype=np.uint64) + 1, 0)
    best = busy == np.repeat(np.maximum.reduceat(busy, starts), sizes)
    # the last best copy of each group: the running count of best copies
    # at each group's end numbers it
    ends = np.r_[starts[1:], n]
    chosen: npt.NDArray[np.intp] = np.flatnonzero(best)[np.cumsum(best)[ends - 1] - 1]
    return chosen


def _table_copies(table: Any, key_size: int, copies: SessionCopies) -> None:
    """A session table's entries: one copy each, shared by every CPU."""
    keys, values, count = libbpf.lookup_batch_arrays(
        int(table.map_fd), key_size, SESSION_DTYPE.itemsize, int(table.max_entries)
    )
    key_column = np.frombuffer(keys, dtype=f"V{key_size}", count=count)
    copies.add(key_column, np.frombuffer(values, dtype=SESSION_DTYPE, count=count))


def _slot_copies(slots: MappedArray, key_size: int, copies: SessionCopies) -> None:
    """Adds the valid slots, read in place after the table, so a slot
    flushed in between is missed by this reading (and seen by the next),
    never counted twice."""
    if key_size == 4:
        rows = slots.view(SLOT_DTYPE).reshape(-1)
        valid = rows[(rows["flags"] & layout.SESSION_VALID) != 0]
        keys = np.ascontiguousarray(valid["teid"], dtype="<u4").view("V4")
        copies.add(keys, valid)
    else:
        rows = slots.view(UE_SLOT_DTYPE).reshape(-1)
        valid = rows[(rows["flags"] & layout.SESSION_VALID) != 0]
        keys = np.ascontiguousarray(valid["ue_addr"]).view(f"V{UE_ADDR_BYTES}").reshape(-1)
        copies.add(keys, valid, qfi=layout.NO_QFI, flags=layout.SESSION_HAS_UE)


def read_sessions(table: Any, key_size: int, slots: MappedArray | None = None) -> SessionTable:
    """Every entry of teid_stats or ue_stats with its slots, CPUs merged."""
    copies = SessionCopies()
    _table_copies(table, key_size, copies)
    if slots is not None:
        _slot_copies(slots, key_size, copies)
    return copies.merge(key_size)
