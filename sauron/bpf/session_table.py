"""The per-session tables (TEIDs on N3/N9, UE addresses on N6) read as
columns: one batch system call per map, per-CPU copies and TEID slots merged
with numpy, so a reading of 100 000 sessions costs milliseconds, not a
Python object per CPU copy."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from sauron.bpf import layout, libbpf

U64 = npt.NDArray[np.uint64]
U32 = npt.NDArray[np.uint32]
UE_ADDR_BYTES = 16


def _ordered(keys: npt.NDArray[np.void]) -> npt.NDArray[Any]:
    """Keys in a form numpy sorts quickly, in the same order as their bytes:
    4- and 8-byte keys as big-endian integers (a TEID key), others as bytes."""
    size = keys.dtype.itemsize
    return keys.view(f">u{size}") if size in (4, 8) else keys


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


SESSION_STRIDE = libbpf.percpu_stride(ctypes.sizeof(layout.SessionStats))
SLOT_STRIDE = libbpf.percpu_stride(ctypes.sizeof(layout.TeidSlot))
SESSION_DTYPE = row_dtype(layout.SessionStats, SESSION_STRIDE)
SLOT_DTYPE = row_dtype(layout.TeidSlot, SLOT_STRIDE)
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
class SessionCopies:
    """Every per-CPU copy and TEID slot of the sessions, not yet merged."""

    keys: list[npt.NDArray[np.void]] = field(default_factory=list)
    rows: list[npt.NDArray[np.void]] = field(default_factory=list)

    def add(self, keys: npt.NDArray[np.void], rows: npt.NDArray[np.void]) -> None:
        names = ("packets", "bytes", "slice_id", "rules_generation", "qfi", "flags", "ue_addr")
        self.keys.append(keys)
        # one common dtype for table rows and slots: the fields they share
        common = np.empty(len(rows), dtype=[(n, rows.dtype.fields[n][0]) for n in names])  # type: ignore[index]
        for n in names:
            common[n] = rows[n]
        self.rows.append(common)

    def merge(self, key_size: int) -> SessionTable:
        """Sums each key's copies; its slice, QFI and UE address come from
        the copy classified under the newest rules, then the busiest."""
        if not any(len(k) for k in self.keys):
            return SessionTable.empty(key_size)
        keys, rows = np.concatenate(self.keys), np.concatenate(self.rows)
        unique, group = np.unique(_ordered(keys), return_inverse=True)
        busy = rows["packets"].sum(axis=1, dtype=np.uint64)
        order = np.lexsort((busy, rows["rules_generation"], group))
        group = group[order]
        rows = rows[order]
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        best = np.r_[starts[1:] - 1, len(group) - 1]  # last of each group ranks highest
        chosen = rows[best]
        return SessionTable(
            keys=unique.view(f"V{key_size}"),
            packets=np.add.reduceat(rows["packets"], starts, axis=0),
            octets=np.add.reduceat(rows["bytes"], starts, axis=0),
            slice_id=chosen["slice_id"].astype(np.uint32),
            qfi=chosen["qfi"].astype(np.uint32),
            ue_addr=np.ascontiguousarray(chosen["ue_addr"], dtype=np.uint8),
            has_ue=(chosen["flags"] & layout.SESSION_HAS_UE) != 0,
        )


def _table_copies(table: Any, key_size: int, copies: SessionCopies) -> None:
    ncpu = libbpf.possible_cpus()
    keys, values, count = libbpf.lookup_batch(
        int(table.map_fd), key_size, SESSION_STRIDE * ncpu, int(table.max_entries)
    )
    key_column = np.frombuffer(keys, dtype=f"V{key_size}", count=count)
    rows = np.frombuffer(values, dtype=SESSION_DTYPE, count=count * ncpu)
    copies.add(np.repeat(key_column, ncpu), rows)


def _slot_copies(table: Any, copies: SessionCopies) -> None:
    """Adds the valid slots; read after teid_stats, so a slot flushed in
    between is missed by this reading (and seen by the next), never counted
    twice."""
    ncpu = libbpf.possible_cpus()
    _, values, count = libbpf.lookup_batch(
        int(table.map_fd), 4, SLOT_STRIDE * ncpu, int(table.max_entries)
    )
    slots = np.frombuffer(values, dtype=SLOT_DTYPE, count=count * ncpu)
    valid = slots[(slots["flags"] & layout.SESSION_VALID) != 0]
    teids = np.ascontiguousarray(valid["teid"], dtype="<u4").view("V4")
    copies.add(teids, valid)


def read_sessions(table: Any, key_size: int, slots: Any | None = None) -> SessionTable:
    """Every entry of teid_stats (with its slots) or ue_stats, CPUs merged."""
    copies = SessionCopies()
    _table_copies(table, key_size, copies)
    if slots is not None:
        _slot_copies(slots, copies)
    return copies.merge(key_size)
