"""The measurement maps: turning them on per slice, reading histograms and
counters (CPUs merged), GTP-U sequence state per TEID, and expiring transit
stamps that were never matched (loss inside the UPF)."""

from __future__ import annotations

import ctypes
import ipaddress
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from sauron.abi import layout
from sauron.abi.histogram import LATENCY, Histogram
from sauron.bpf import libbpf


def sample_mask(one_in: int) -> int:
    """The hash mask that samples one packet in `one_in` (a power of two)."""
    if one_in < 1 or one_in & (one_in - 1):
        raise ValueError(f"a sampling rate must be a power of two, not {one_in}")
    return one_in - 1


@dataclass(frozen=True)
class MeasureSettings:
    """What the programs measure. transit_one_in maps slice ids to their
    sampling rate (1 = every packet; a slice missing is not stamped)."""

    transit: bool = True
    rtt: bool = True
    sequence: bool = True
    retransmissions: bool = True
    transit_one_in: tuple[tuple[int, int], ...] = ()
    rtt_timestamp_one_in: int = 1

    @classmethod
    def off(cls) -> MeasureSettings:
        return cls(transit=False, rtt=False, sequence=False, retransmissions=False)

    def flags(self) -> int:
        return (
            (layout.MEASURE_TRANSIT if self.transit else 0)
            | (layout.MEASURE_RTT if self.rtt else 0)
            | (layout.MEASURE_SEQUENCE if self.sequence else 0)
            | (layout.MEASURE_RETRANS if self.retransmissions else 0)
        )


#: the bits of sauron_config.measure these settings own (the evidence tap's
#: and the security checks' are theirs: sauron.bpf.evidence, .security)
OWNED_BITS = (
    layout.MEASURE_TRANSIT | layout.MEASURE_RTT | layout.MEASURE_SEQUENCE | layout.MEASURE_RETRANS
)


def settings_for(catalog: Any, unclassified_one_in: int = 0) -> MeasureSettings:
    """Everything on, each catalog slice sampled at its own rate; traffic no
    slice claims on N6 (a NATed downlink) only when unclassified_one_in > 0."""
    rates = [(s.id, s.spec.transit_sample_one_in) for s in catalog.slices]
    if unclassified_one_in:
        rates.append((layout.UNCLASSIFIED_SLICE, unclassified_one_in))
    return MeasureSettings(transit_one_in=tuple(rates))


def apply_settings(dataplane: Any, settings: MeasureSettings) -> None:
    """Writes the per-slice sampling (in place: a slice already sampled
    stays sampled while its entry is rewritten) and the global switches."""
    table = dataplane.table("slice_config")
    wanted = {slice_id: sample_mask(one_in) for slice_id, one_in in settings.transit_one_in}
    for slice_id in range(int(table.max_entries)):
        key = ctypes.c_uint32(slice_id)
        # the evidence flag is the diagnosis's (sauron.bpf.evidence), kept as it is
        kept = layout.SliceConfig.from_buffer_copy(bytes(table[key])).flags & layout.SLICE_EVIDENCE
        mask = wanted.get(slice_id)
        table[key] = (
            layout.SliceConfig(transit_sample_mask=mask, flags=layout.SLICE_TRANSIT | kept)
            if mask is not None
            else layout.SliceConfig(flags=kept)
        )
    masks = list(wanted.values())
    dataplane.set_measure_bits(OWNED_BITS, settings.flags())
    raw = dataplane.table("config")[ctypes.c_uint32(0)]
    cfg = layout.Config.from_buffer_copy(bytes(raw))
    # egress looks up whatever the most-sampled slice would have stamped
    cfg.transit_lookup_mask = min(masks) if masks else 0
    cfg.rtt_ts_mask = sample_mask(settings.rtt_timestamp_one_in)
    dataplane.table("config")[ctypes.c_uint32(0)] = cfg


def percpu_rows(
    table: Any, value_size: int, entries: int | None = None
) -> tuple[bytes, bytes, int, int]:
    """The first `entries` (default: every) entries of a per-CPU map."""
    ncpu = libbpf.possible_cpus()
    stride = libbpf.percpu_stride(value_size)
    key_size = ctypes.sizeof(table.Key)
    capacity = int(table.max_entries)
    wanted = capacity if entries is None else min(entries, capacity)
    keys, values, count = libbpf.lookup_batch(int(table.map_fd), key_size, stride * ncpu, wanted)
    return keys, values, count, ncpu


def nonzero_rows(values: bytes, count: int, ncpu: int, words: int) -> tuple[np.ndarray, np.ndarray]:
    """The per-CPU rows with any non-zero word: (their indices, their words
    as [row, cpu, word])."""
    block = libbpf.percpu_words(values, count, ncpu, words * 8)
    used = np.flatnonzero(block.any(axis=(1, 2)))
    return used, block[used]


LATENCY_WORDS = ctypes.sizeof(layout.LatencyHist) // 8


def histogram_of_rows(rows: np.ndarray) -> Histogram:
    """One struct sauron_latency_hist's per-CPU copies: counts and sums
    added (modulo 2^64, so a count taken back on another CPU comes out
    right), the maximum the largest of the CPUs'."""
    summed = rows.sum(axis=0, dtype=np.uint64).tolist()
    return Histogram(LATENCY, summed[3:], summed[0], summed[1], int(rows[:, 2].max()))


def read_latency(
    dataplane: Any, slices: int = layout.MAX_SLICES
) -> dict[tuple[int, int, int], Histogram]:
    """Non-empty latency histograms by (metric, slice, direction), for slice
    ids below `slices`."""
    _, values, count, ncpu = percpu_rows(
        dataplane.table("latency_hist"), LATENCY_WORDS * 8, slices * layout.LATENCY_ROWS
    )
    out: dict[tuple[int, int, int], Histogram] = {}
    used, rows = nonzero_rows(values, count, ncpu, LATENCY_WORDS)
    for index, per_cpu in zip(used.tolist(), rows, strict=True):
        slice_id, rest = divmod(index, layout.LATENCY_ROWS)
        metric, direction = divmod(rest, layout.DIRS)
        out[(metric, slice_id, direction)] = histogram_of_rows(per_cpu)
    return out


def read_measure_stats(
    dataplane: Any, slices: int = layout.MAX_SLICES
) -> dict[tuple[int, int], layout.MeasureStats]:
    """Non-zero measurement counters by (slice, direction), for slice ids
    below `slices`."""
    words = ctypes.sizeof(layout.MeasureStats) // 8
    _, values, count, ncpu = percpu_rows(
        dataplane.table("measure_stats"), words * 8, slices * layout.MEASURE_ROWS
    )
    out: dict[tuple[int, int], layout.MeasureStats] = {}
    used, rows = nonzero_rows(values, count, ncpu, words)
    for index, per_cpu in zip(used.tolist(), rows, strict=True):
        summed = np.ascontiguousarray(per_cpu.sum(axis=0, dtype=np.uint64))
        out[divmod(index, layout.DIRS)] = layout.MeasureStats.from_buffer_copy(summed.tobytes())
    return out


def address_text(raw: bytes) -> str:
    """A 16-byte address as text, IPv4-mapped ones as plain IPv4."""
    addr = ipaddress.IPv6Address(raw)
    return str(addr.ipv4_mapped) if addr.ipv4_mapped else str(addr)


def read_peer_rtt(dataplane: Any) -> dict[tuple[str, int], Histogram]:
    """GTP-U echo round trips by (peer address, initiator)."""
    keys, values, count, ncpu = percpu_rows(dataplane.table("peer_rtt"), LATENCY_WORDS * 8)
    key_size = ctypes.sizeof(layout.PeerKey)
    out: dict[tuple[str, int], Histogram] = {}
    used, rows = nonzero_rows(values, count, ncpu, LATENCY_WORDS)
    for index, per_cpu in zip(used.tolist(), rows, strict=True):
        key = layout.PeerKey.from_buffer_copy(keys, index * key_size)
        out[(address_text(bytes(key.peer)), int(key.initiator))] = histogram_of_rows(per_cpu)
    return out


@dataclass(frozen=True)
class SequenceRecord:
    """GTP-U sequence numbers of one tunnel (TEID at its receiver) and
    direction."""

    teid: int
    direction: int
    receiver: str
    slice_id: int
    received: int
    lost: int
    reordered: int
    duplicates: int


def read_sequences(dataplane: Any) -> list[SequenceRecord]:
    table = dataplane.table("seq_state")
    key_size = ctypes.sizeof(layout.SeqKey)
    value_size = ctypes.sizeof(layout.SeqState)
    keys, values, count = libbpf.lookup_batch(
        int(table.map_fd), key_size, value_size, int(table.max_entries)
    )
    out = []
    for i in range(count):
        key = layout.SeqKey.from_buffer_copy(keys, i * key_size)
        st = layout.SeqState.from_buffer_copy(values, i * value_size)
        out.append(
            SequenceRecord(
                teid=int(key.teid),
                direction=int(key.direction),
                receiver=address_text(bytes(key.receiver)),
                slice_id=int(st.slice_id),
                received=int(st.received),
                lost=int(st.lost),
                reordered=int(st.reordered),
                duplicates=int(st.duplicates),
            )
        )
    return sorted(out, key=lambda r: (r.teid, r.direction, r.receiver))


#: what the expiry reads of a transit slot (sauron_transit_slot)
#: a packet inside the UPF longer than this is lost: its transit stamp
#: expires, and the engine counts it dropped (sauron.kpi.upf_drops)
TRANSIT_EXPIRY_S = 2.0

_SLOT_DTYPE = np.dtype(
    {
        "names": ["state", "ns", "direction", "slice_id"],
        "formats": ["<u8", "<i8", "u1", "<u4"],
        "offsets": [
            layout.TransitSlot.state.offset,
            layout.TransitSlot.ns.offset,
            layout.TransitSlot.fp.offset + layout.Fingerprint.direction.offset,
            layout.TransitSlot.slice_id.offset,
        ],
        "itemsize": ctypes.sizeof(layout.TransitSlot),
    }
)


class TransitExpiry:
    """Frees transit stamps older than the timeout: each is a packet lost
    inside the UPF, counted by the kernel under its slice and direction
    (measure_stats.transit_expired). The agent finds them in the mapped
    slots; a kernel program frees each only if its slot still holds the
    state read, so a match meanwhile wins, and a slot refilled meanwhile is
    left alone. The timeout goes to the data path too: a stamp that needs a
    slot held by an overdue stamp takes it over and counts that one lost.

    `clock` returns nanoseconds on the programs' clock (CLOCK_MONOTONIC)."""

    def __init__(
        self,
        dataplane: Any,
        timeout_s: float = TRANSIT_EXPIRY_S,
        clock: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.slots = dataplane.mapped("transit_slots", layout.TransitSlot, cpu_major=False)
        self.program_fd = dataplane.transit_expiry_fd()
        self.timeout_ns = int(timeout_s * 1e9)
        self.clock = clock
        dataplane.set_transit_expiry(self.timeout_ns)

    def pending(self) -> int:
        states = self.slots.words()[0, :, 0]
        return int(np.count_nonzero((states & layout.TRANSIT_PHASE) == layout.TRANSIT_PENDING))

    def sweep(self) -> Counter[tuple[int, int]]:
        """Expires what is due; returns the stamps this sweep freed by
        (slice, direction)."""
        now = self.clock()
        view = self.slots.view(_SLOT_DTYPE)[0]
        # the states first, as plain words (a strided copy, not a structured
        # one): a field read after its state is of that state's stamp or a
        # newer one, and a newer one fails the kernel's swap
        states = self.slots.words()[0, :, 0].copy()
        pending = np.flatnonzero((states & layout.TRANSIT_PHASE) == layout.TRANSIT_PENDING)
        due = pending[now - view["ns"][pending] >= self.timeout_ns]
        lost: Counter[tuple[int, int]] = Counter()
        batch = layout.TRANSIT_EXPIRE_BATCH
        for start in range(0, len(due), batch):
            chosen = due[start : start + batch]
            taken = view[chosen]
            pairs = np.empty((len(chosen), 2), dtype="<u8")
            pairs[:, 0] = chosen
            pairs[:, 1] = states[chosen]
            out = libbpf.test_run(self.program_fd, pairs.tobytes()).data_out
            freed = np.frombuffer(out, dtype="<u8", count=pairs.size).reshape(-1, 2)[:, 1] == 0
            for slice_id, direction in zip(
                taken["slice_id"][freed].tolist(), taken["direction"][freed].tolist(), strict=True
            ):
                lost[(slice_id, direction & 1)] += 1
        return lost
