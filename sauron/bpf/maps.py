"""Reading the data-plane maps: one batch system call per map, per-CPU values
summed in user space."""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, overload

import numpy as np

from sauron.abi import layout, points
from sauron.abi.histogram import Histogram
from sauron.bpf import libbpf
from sauron.bpf.measurements import (
    TransitExpiry,
    read_latency,
    read_measure_stats,
    read_peer_rtt,
)
from sauron.bpf.security import checks_on, read_counts
from sauron.bpf.session_table import Session, SessionTable, read_sessions


def delta(now: int, before: int) -> int:
    """A counter's growth; a counter that went down was reset (agent or map
    restart, LRU eviction) and counts from zero."""
    return now - before if now >= before else now


class SummedRows(Sequence[Any]):
    """A per-CPU array of all-counter structs, summed over CPUs into one
    numpy block; a struct is made only for the index asked for. A reading of
    the array's first entries only answers zero beyond them."""

    def __init__(
        self, value_type: type[ctypes.Structure], words: np.ndarray, capacity: int | None = None
    ) -> None:
        self.value_type = value_type
        self.words = words
        self.capacity = len(words) if capacity is None else capacity

    def __len__(self) -> int:
        return self.capacity

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += self.capacity
        if not 0 <= index < self.capacity:
            raise IndexError(index)
        if index >= len(self.words):
            return self.value_type()
        return self.value_type.from_buffer_copy(self.words[index])


def read_percpu_array(
    table: Any, value_type: type[ctypes.Structure], entries: int | None = None
) -> SummedRows:
    """The first `entries` (default: every) index of a per-CPU array of
    64-bit counters, summed over CPUs (modulo 2^64, so a count taken back on
    another CPU comes out right)."""
    size = ctypes.sizeof(value_type)
    assert size % 8 == 0, value_type
    ncpu = libbpf.possible_cpus()
    stride = libbpf.percpu_stride(size)
    capacity = int(table.max_entries)
    wanted = capacity if entries is None else min(entries, capacity)
    _, values, count = libbpf.lookup_batch(int(table.map_fd), 4, stride * ncpu, wanted)
    words = libbpf.percpu_words(values, count, ncpu, stride)[:, :, : size // 8]
    summed = np.ascontiguousarray(words.sum(axis=1, dtype=np.uint64))
    return SummedRows(value_type, summed, capacity)


#: word offsets in a slice_stats row (sauron_shared.h)
_PACKETS = layout.SliceStats.packets.offset // 8
_MSG = layout.SliceStats.msg.offset // 8


#: by point id: whether its frames are GTP-U
_GTPU_POINT = np.array([p.gtpu for p in points.POINTS], dtype=bool)


def _slice_row_points(rows: int) -> np.ndarray:
    return (np.arange(rows) // layout.DIRS) % layout.POINTS


def read_slice_stats(dataplane: Any, slices: int = layout.MAX_SLICES) -> SummedRows:
    """slice_stats for slice ids below `slices`, summed over CPUs, with the
    message kinds the programs leave uncounted filled in: every frame a GTP-U
    point accounts is of one kind, so its G-PDUs are its packets less the
    other kinds; every frame an N6 point accounts is plain IP."""
    array = dataplane.mapped("slice_stats", layout.SliceStats)
    words = array.summed_words(slices * layout.SLICE_STATS_ROWS)
    gtp = _GTPU_POINT[_slice_row_points(len(words))]
    counted = words[:, _MSG : _MSG + layout.MSG_KINDS].sum(axis=1, dtype=np.uint64)
    derived = words[:, _PACKETS] - counted  # modulo 2^64, like every sum here
    words[gtp, _MSG + layout.MSG_G_PDU] += derived[gtp]
    words[~gtp, _MSG + layout.MSG_NOT_GTPU] += derived[~gtp]
    return SummedRows(layout.SliceStats, words, array.rows)


def read_cpu_array(
    dataplane: Any, name: str, value_type: type[ctypes.Structure], entries: int | None = None
) -> SummedRows:
    """The first `entries` rows of a CPU-major counter array, summed."""
    array = dataplane.mapped(name, value_type)
    return SummedRows(value_type, array.summed_words(entries), array.rows)


def _packets_per_point(dataplane: Any, slices: int) -> np.ndarray:
    """Frames accounted per slice at each point, slice ids below `slices`
    (the programs give no frame a higher one)."""
    array = dataplane.mapped("slice_stats", layout.SliceStats)
    rows = array.words(slices * layout.SLICE_STATS_ROWS)
    packets = rows[:, :, _PACKETS].sum(axis=0, dtype=np.uint64)
    per_point: np.ndarray = packets.reshape(-1, layout.POINTS, layout.DIRS).sum(
        axis=(0, 2), dtype=np.uint64
    )
    return per_point


#: the points whose programs run where a packet is received (in the packet
#: softirq that receives it): the packets whose softirq time is Sauron's
RECEIVING_POINTS = tuple(p.id for p in points.POINTS if p.ingress)


def read_received_per_cpu(dataplane: Any, slices: int = layout.MAX_SLICES) -> np.ndarray:
    """Packets the receiving points accounted, per CPU and slice id below
    `slices`: [cpu, slice] (the energy estimator splits each CPU's packet
    softirq time by them)."""
    array = dataplane.mapped("slice_stats", layout.SliceStats)
    rows = array.words(slices * layout.SLICE_STATS_ROWS)
    packets = rows[:, :, _PACKETS].reshape(rows.shape[0], -1, layout.POINTS, layout.DIRS)
    received: np.ndarray = packets[:, :, list(RECEIVING_POINTS), :].sum(
        axis=(2, 3), dtype=np.uint64
    )
    return received


def read_events(dataplane: Any, slices: int = layout.MAX_SLICES) -> list[int]:
    """events summed over CPUs, with what the programs derive rather than
    count (sauron_shared.h): the categories of the frames accounted per
    slice, and FRAMES, the sum of all categories."""
    array = dataplane.mapped("events", ctypes.c_uint64)
    events = array.summed_words()[:, 0].reshape(layout.POINTS, layout.EVENTS).copy()
    per_point = _packets_per_point(dataplane, slices)
    for point in points.POINTS:
        accounted = layout.EV_GTPU if point.gtpu else layout.EV_IP
        events[point.id, accounted] += per_point[point.id]
    categories = events[:, layout.EV_FRAMES + 1 : layout.ANOMALY_FIRST]
    events[:, layout.EV_FRAMES] = categories.sum(axis=1, dtype=np.uint64)
    return [int(v) for v in events.reshape(-1)]


@dataclass
class DataPlaneCounters:
    """One reading of every counter map."""

    slice_stats: Sequence[layout.SliceStats]
    qfi_stats: Sequence[layout.Traffic]
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
    #: packets the receiving points accounted, [cpu, slice id]
    received_per_cpu: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.uint64))
    #: uplink G-PDUs that failed each security check, [slice id, kind]
    #: (counted while the checks were on, kept while off)
    security: np.ndarray = field(default_factory=lambda: np.zeros((0, layout.SEC_KINDS), np.uint64))
    #: whether the checks were on at the reading
    security_on: bool = False

    def slice(self, point: int, slice_id: int, direction: int) -> layout.SliceStats:
        return self.slice_stats[layout.slice_stats_index(point, slice_id, direction)]

    def qfi(self, point: int, slice_id: int, qfi: int, direction: int) -> layout.Traffic:
        """Zero at a point that sees no QFIs."""
        if not points.point(point).sees_qfi:
            return layout.Traffic()
        return self.qfi_stats[layout.qfi_stats_index(point, slice_id, qfi, direction)]

    def event(self, point: int, event: int) -> int:
        return self.events[layout.event_index(point, event)]

    def security_count(self, slice_id: int, kind: int) -> int:
        """Frames of the slice that failed the check `kind` (layout.SEC_*);
        zero for a slice beyond the rows read."""
        rows = self.security
        return int(rows[slice_id, kind]) if slice_id < rows.shape[0] else 0

    def teid_of(self, session: Session) -> int:
        return int.from_bytes(session.key, "little")


def transit_losses(
    measure: dict[tuple[int, int], layout.MeasureStats],
) -> dict[tuple[int, int], int]:
    """Transit stamps expired unmatched, by (slice, direction): counted by
    the kernel, whether the sweep or a stamp taking an overdue slot freed
    them."""
    return {key: int(m.transit_expired) for key, m in measure.items() if m.transit_expired}


def read_counters(
    dataplane: Any, expiry: TransitExpiry | None = None, slices: int = layout.MAX_SLICES
) -> DataPlaneCounters:
    """Every counter map; with `expiry`, overdue transit stamps are expired
    first. Per-slice maps are read for slice ids below `slices` only (the
    catalog's Catalog.slice_rows)."""
    if expiry is not None:
        expiry.sweep()
    measure = read_measure_stats(dataplane, slices)
    return DataPlaneCounters(
        slice_stats=read_slice_stats(dataplane, slices),
        qfi_stats=read_cpu_array(
            dataplane, "qfi_stats", layout.Traffic, slices * layout.QFI_STATS_ROWS
        ),
        events=read_events(dataplane, slices),
        teids=read_sessions(
            dataplane.table("teid_stats"), 4, dataplane.mapped("teid_slots", layout.TeidSlot)
        ),
        ues=read_sessions(
            dataplane.table("ue_stats"), 16, dataplane.mapped("ue_slots", layout.UeSlot)
        ),
        latency=read_latency(dataplane, slices),
        measure=measure,
        transit_expired=transit_losses(measure),
        peers=read_peer_rtt(dataplane),
        received_per_cpu=read_received_per_cpu(dataplane, slices),
        security=read_counts(dataplane, slices),
        security_on=checks_on(dataplane),
    )


class CounterReader:
    """read_counters for the agent's every interval, with a shortcut for a
    quiet data path: every frame a program sees is counted, in `events` or
    in slice_stats, before anything else about it, so when the events read
    with their derived FRAMES (read_events, two mapped arrays summed) have
    not moved since the last two readings, no other counter map has either
    (the extra reading lets a frame still being counted during a full
    reading finish), and the last full reading stands. Idle, an interval
    then costs no system call but the transit stamps' expiry sweep."""

    QUIET_READINGS = 2

    def __init__(
        self,
        dataplane: Any,
        expiry: TransitExpiry | None = None,
        slices: int = layout.MAX_SLICES,
    ) -> None:
        self.dataplane = dataplane
        self.expiry = expiry
        self.slices = slices
        self.full_readings = 0
        self._events: list[int] | None = None
        self._quiet = 0
        self._last: DataPlaneCounters | None = None

    def __call__(self) -> DataPlaneCounters:
        events = read_events(self.dataplane, self.slices)
        if events == self._events:
            self._quiet += 1
        else:
            self._events, self._quiet = events, 0
        if self._last is None or self._quiet < self.QUIET_READINGS:
            self._last = read_counters(self.dataplane, self.expiry, self.slices)
            self.full_readings += 1
            return self._last
        if self.expiry is None or not self.expiry.sweep():
            return self._last
        measure = read_measure_stats(self.dataplane, self.slices)
        self._last = replace(self._last, measure=measure, transit_expired=transit_losses(measure))
        return self._last
