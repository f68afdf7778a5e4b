"""Reading the data-plane maps: one batch system call per map, per-CPU values
summed in user space."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import Any

from sauron.bpf import layout, libbpf
from sauron.bpf.measurements import (
    TransitExpiry,
    read_latency,
    read_measure_stats,
    read_peer_rtt,
)
from sauron.bpf.session_table import Session, SessionTable, read_sessions
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


@dataclass
class DataPlaneCounters:
    """One reading of every counter map."""

    slice_stats: list[layout.SliceStats]
    qfi_stats: list[layout.Traffic]
    events: list[int]
    teids: SessionTable
    ues: SessionTable
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
