"""Reading the data-plane maps: one batch system call per map, per-CPU values
summed in user space."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import Any

from sauron.bpf import layout, libbpf


def _round8(n: int) -> int:
    return (n + 7) & ~7


def _add_into(total: ctypes.Structure, part: ctypes.Structure) -> None:
    for name, ctype in total._fields_:  # type: ignore[misc]
        if name in ("slice_id", "rules_generation", "qfi", "flags", "ue_addr"):
            continue
        if issubclass(ctype, ctypes.Array):
            dst, src = getattr(total, name), getattr(part, name)
            for i in range(len(dst)):
                dst[i] += src[i]
        else:
            setattr(total, name, getattr(total, name) + getattr(part, name))


def read_percpu_array(table: Any, value_type: type[ctypes.Structure]) -> list[ctypes.Structure]:
    """Every index of a per-CPU array, summed over CPUs."""
    ncpu = libbpf.possible_cpus()
    vsize = _round8(ctypes.sizeof(value_type))
    max_entries = int(table.max_entries)
    _, values, count = libbpf.lookup_batch(int(table.map_fd), 4, vsize * ncpu, max_entries)
    out: list[ctypes.Structure] = []
    zero_row = bytes(vsize * ncpu)
    for i in range(count):
        row = values[i * vsize * ncpu : (i + 1) * vsize * ncpu]
        total = value_type()
        if row != zero_row:
            for cpu in range(ncpu):
                _add_into(total, value_type.from_buffer_copy(row, cpu * vsize))
        out.append(total)
    return out


def read_percpu_u64_array(table: Any) -> list[int]:
    ncpu = libbpf.possible_cpus()
    max_entries = int(table.max_entries)
    _, values, count = libbpf.lookup_batch(int(table.map_fd), 4, 8 * ncpu, max_entries)
    words = memoryview(values).cast("Q")
    return [sum(words[i * ncpu : (i + 1) * ncpu]) for i in range(count)]


@dataclass
class Session:
    """A TEID's or UE address's counters merged over CPUs."""

    key: bytes
    slice_id: int
    qfi: int
    ue_addr: bytes | None = None
    packets: list[int] = field(default_factory=lambda: [0, 0])
    bytes: list[int] = field(default_factory=lambda: [0, 0])


def read_sessions(table: Any, key_size: int) -> list[Session]:
    """Every entry of teid_stats or ue_stats. The slice is the one of the CPU
    copy that saw the most packets (copies agree unless rules changed)."""
    ncpu = libbpf.possible_cpus()
    vsize = _round8(ctypes.sizeof(layout.SessionStats))
    max_entries = int(table.max_entries)
    keys, values, count = libbpf.lookup_batch(
        int(table.map_fd), key_size, vsize * ncpu, max_entries
    )
    sessions: list[Session] = []
    for i in range(count):
        key = keys[i * key_size : (i + 1) * key_size]
        base = i * vsize * ncpu
        best = -1
        session = Session(key=key, slice_id=0, qfi=layout.NO_QFI)
        for cpu in range(ncpu):
            s = layout.SessionStats.from_buffer_copy(values, base + cpu * vsize)
            seen = s.packets[0] + s.packets[1]
            for d in range(layout.DIRS):
                session.packets[d] += s.packets[d]
                session.bytes[d] += s.bytes[d]
            if seen > best:
                best = seen
                session.slice_id = int(s.slice_id)
                session.qfi = int(s.qfi)
                session.ue_addr = bytes(s.ue_addr) if s.flags & layout.SESSION_HAS_UE else None
        sessions.append(session)
    return sessions


@dataclass
class DataPlaneCounters:
    """One reading of every counter map."""

    slice_stats: list[layout.SliceStats]
    qfi_stats: list[layout.Traffic]
    events: list[int]
    teids: list[Session]
    ues: list[Session]

    def slice(self, point: int, slice_id: int, direction: int) -> layout.SliceStats:
        return self.slice_stats[layout.slice_stats_index(point, slice_id, direction)]

    def qfi(self, point: int, slice_id: int, qfi: int, direction: int) -> layout.Traffic:
        return self.qfi_stats[layout.qfi_stats_index(point, slice_id, qfi, direction)]

    def event(self, point: int, event: int) -> int:
        return self.events[layout.event_index(point, event)]

    def teid_of(self, session: Session) -> int:
        return int.from_bytes(session.key, "little")


def read_counters(dataplane: Any) -> DataPlaneCounters:
    return DataPlaneCounters(
        slice_stats=read_percpu_array(dataplane.table("slice_stats"), layout.SliceStats),  # type: ignore[arg-type]
        qfi_stats=read_percpu_array(dataplane.table("qfi_stats"), layout.Traffic),  # type: ignore[arg-type]
        events=read_percpu_u64_array(dataplane.table("events")),
        teids=read_sessions(dataplane.table("teid_stats"), 4),
        ues=read_sessions(dataplane.table("ue_stats"), 16),
    )
