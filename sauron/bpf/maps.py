"""Reading the data-plane maps: one batch system call per map, per-CPU values
summed in user space."""

from __future__ import annotations

import ctypes
import struct
from dataclasses import dataclass, field
from typing import Any

from sauron.bpf import layout, libbpf
from sauron.bpf.measurements import (
    TransitExpiry,
    read_latency,
    read_measure_stats,
    read_peer_rtt,
)
from sauron.histogram import Histogram


def delta(now: int, before: int) -> int:
    """A counter's growth; a counter that went down was reset (agent or map
    restart, LRU eviction) and counts from zero."""
    return now - before if now >= before else now


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
    vsize = libbpf.percpu_stride(ctypes.sizeof(value_type))
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


@dataclass(slots=True)
class Session:
    """A TEID's or UE address's counters merged over CPUs."""

    key: bytes
    slice_id: int
    qfi: int
    ue_addr: bytes | None = None
    packets: list[int] = field(default_factory=lambda: [0, 0])
    bytes: list[int] = field(default_factory=lambda: [0, 0])


class _SessionMerge:
    """Sums one session's per-CPU copies; its slice, QFI and UE address come
    from the copy classified under the newest rules, then the busiest."""

    __slots__ = ("rank", "session")

    def __init__(self, key: bytes) -> None:
        # positional: tens of thousands of these are made per reading
        self.session = Session(key, 0, layout.NO_QFI, None, [0, 0], [0, 0])
        self.rank = (-1, -1)

    def add(
        self,
        packets: tuple[int, int],
        octets: tuple[int, int],
        slice_id: int,
        generation: int,
        qfi: int,
        flags: int,
        ue_addr: bytes,
    ) -> None:
        """One CPU's copy of the session."""
        session = self.session
        session.packets[0] += packets[0]
        session.packets[1] += packets[1]
        session.bytes[0] += octets[0]
        session.bytes[1] += octets[1]
        rank = (generation, packets[0] + packets[1])
        if rank > self.rank:
            self.rank = rank
            session.slice_id = slice_id
            session.qfi = qfi
            session.ue_addr = ue_addr if flags & SESSION_HAS_UE else None


def unpacker(ctype: type[ctypes.Structure]) -> struct.Struct:
    """A struct.Struct reading the same bytes as a ctypes structure, field
    by field (arrays of integers spread out, byte arrays as bytes), many
    times faster per row; it refuses a layout with hidden padding."""
    codes: dict[Any, str] = {
        ctypes.c_uint64: "Q",
        ctypes.c_uint32: "I",
        ctypes.c_uint16: "H",
        ctypes.c_uint8: "B",
    }
    fmt = "<"
    ftype: Any
    for _, ftype in ctype._fields_:  # type: ignore[misc]
        if issubclass(ftype, ctypes.Array):
            elem, n = ftype._type_, ftype._length_
            fmt += f"{n}s" if elem is ctypes.c_uint8 else f"{n}{codes[elem]}"
        else:
            fmt += codes[ftype]
    packer = struct.Struct(fmt)
    if packer.size != ctypes.sizeof(ctype):
        raise ValueError(f"{ctype.__name__} has padding struct cannot see")
    return packer


SESSION_ROW = unpacker(layout.SessionStats)
SESSION_HAS_UE = layout.SESSION_HAS_UE
assert layout.DIRS == 2, "Session and the row readers hold two directions"
SLOT_ROW = unpacker(layout.TeidSlot)


def _read_session_table(table: Any, key_size: int, merged: dict[bytes, _SessionMerge]) -> None:
    ncpu = libbpf.possible_cpus()
    vsize = libbpf.percpu_stride(ctypes.sizeof(layout.SessionStats))
    keys, values, count = libbpf.lookup_batch(
        int(table.map_fd), key_size, vsize * ncpu, int(table.max_entries)
    )
    unpack = SESSION_ROW.unpack_from
    for i in range(count):
        key = keys[i * key_size : (i + 1) * key_size]
        entry = merged.get(key)
        if entry is None:
            entry = merged[key] = _SessionMerge(key)
        for cpu in range(ncpu):
            p0, p1, b0, b1, slice_id, gen, qfi, flags, ue = unpack(values, (i * ncpu + cpu) * vsize)
            entry.add((p0, p1), (b0, b1), slice_id, gen, qfi, flags, ue)


def _read_teid_slots(table: Any, merged: dict[bytes, _SessionMerge]) -> None:
    """Adds the valid slots; read after teid_stats, so a slot flushed in
    between is missed by this reading (and seen by the next), never counted
    twice."""
    ncpu = libbpf.possible_cpus()
    vsize = libbpf.percpu_stride(ctypes.sizeof(layout.TeidSlot))
    flags_at = layout.TeidSlot.flags.offset
    _, values, count = libbpf.lookup_batch(
        int(table.map_fd), 4, vsize * ncpu, int(table.max_entries)
    )
    view = memoryview(values)
    unpack = SLOT_ROW.unpack_from
    for n in range(count * ncpu):
        base = n * vsize
        if not view[base + flags_at] & layout.SESSION_VALID:
            continue
        teid, gen, slice_id, flags, qfi, _, p0, p1, b0, b1, ue = unpack(values, base)
        key = teid.to_bytes(4, "little")
        entry = merged.get(key)
        if entry is None:
            entry = merged[key] = _SessionMerge(key)
        entry.add((p0, p1), (b0, b1), slice_id, gen, qfi, flags, ue)


def read_sessions(table: Any, key_size: int, slots: Any | None = None) -> list[Session]:
    """Every entry of teid_stats (with its slots) or ue_stats, CPUs merged."""
    merged: dict[bytes, _SessionMerge] = {}
    _read_session_table(table, key_size, merged)
    if slots is not None:
        _read_teid_slots(slots, merged)
    return [m.session for m in merged.values()]


@dataclass
class DataPlaneCounters:
    """One reading of every counter map."""

    slice_stats: list[layout.SliceStats]
    qfi_stats: list[layout.Traffic]
    events: list[int]
    teids: list[Session]
    ues: list[Session]
    #: (metric, slice, direction) -> histogram, non-empty ones
    latency: dict[tuple[int, int, int], Histogram] = field(default_factory=dict)
    #: (slice, direction) -> measurement counters, non-zero ones
    measure: dict[tuple[int, int], layout.MeasureStats] = field(default_factory=dict)
    #: (slice, direction) -> transit stamps expired unmatched (lost in the UPF)
    transit_expired: dict[tuple[int, int], int] = field(default_factory=dict)
    #: (peer, initiator) -> GTP-U echo round trips
    peers: dict[tuple[str, int], Histogram] = field(default_factory=dict)

    def slice(self, point: int, slice_id: int, direction: int) -> layout.SliceStats:
        return self.slice_stats[layout.slice_stats_index(point, slice_id, direction)]

    def qfi(self, point: int, slice_id: int, qfi: int, direction: int) -> layout.Traffic:
        return self.qfi_stats[layout.qfi_stats_index(point, slice_id, qfi, direction)]

    def event(self, point: int, event: int) -> int:
        return self.events[layout.event_index(point, event)]

    def teid_of(self, session: Session) -> int:
        return int.from_bytes(session.key, "little")


def read_counters(dataplane: Any, expiry: TransitExpiry | None = None) -> DataPlaneCounters:
    """Every counter map; with `expiry`, overdue transit stamps are expired
    first and the running loss count comes along."""
    if expiry is not None:
        expiry.sweep()
    return DataPlaneCounters(
        slice_stats=read_percpu_array(dataplane.table("slice_stats"), layout.SliceStats),  # type: ignore[arg-type]
        qfi_stats=read_percpu_array(dataplane.table("qfi_stats"), layout.Traffic),  # type: ignore[arg-type]
        events=read_percpu_u64_array(dataplane.table("events")),
        teids=read_sessions(dataplane.table("teid_stats"), 4, dataplane.table("teid_slots")),
        ues=read_sessions(dataplane.table("ue_stats"), 16),
        latency=read_latency(dataplane),
        measure=read_measure_stats(dataplane),
        transit_expired=dict(expiry.expired) if expiry is not None else {},
        peers=read_peer_rtt(dataplane),
    )
