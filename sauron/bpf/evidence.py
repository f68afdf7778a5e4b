"""The data path's evidence tap: which slices' frames the programs copy
into evidence_ring (each slice's SAURON_SLICE_EVIDENCE flag, and the
config's SAURON_MEASURE_EVIDENCE bit that makes the counting programs hand
their frames over at all), and the frames they copied. With no slice
flagged, the bit is off and no frame pays for the tap."""

from __future__ import annotations

import ctypes
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sauron.abi import layout
from sauron.bpf import libbpf
from sauron.bpf.ring_buffer import RingBuffer

RING = "evidence_ring"
MISSED = "evidence_missed"


@dataclass(frozen=True, slots=True)
class EvidenceFrame:
    """A frame's first bytes as a program saw them."""

    time_ns: int  # unix nanoseconds
    frame_len: int  # its whole length
    slice_id: int
    teid: int
    point: int
    direction: int
    data: bytes  # at most layout.EVIDENCE_SNAPLEN bytes


def _record_format(record: type[ctypes.Structure]) -> struct.Struct:
    """The layout's struct as a `struct` format (a ring may hand thousands
    of records an interval: a ctypes object each costs seven times more)."""
    codes: dict[Any, str] = {
        ctypes.c_uint64: "Q",
        ctypes.c_uint32: "I",
        ctypes.c_uint16: "H",
        ctypes.c_uint8: "B",
    }
    parts = []
    for field in record._fields_:
        ctype = field[1]
        length = getattr(ctype, "_length_", None)
        parts.append(f"{length}s" if length is not None else codes[ctype])
    fmt = struct.Struct("<" + "".join(parts))
    assert fmt.size == ctypes.sizeof(record), "the layout has padding a format would miss"
    return fmt


_RECORD = _record_format(layout.Evidence)


def decode(record: bytes, unix_offset_ns: int) -> EvidenceFrame:
    """A ring record; its monotonic time moved to the unix clock."""
    time_ns, frame_len, slice_id, teid, captured, point, direction, data = _RECORD.unpack_from(
        record
    )
    return EvidenceFrame(
        time_ns=time_ns + unix_offset_ns,
        frame_len=frame_len,
        slice_id=slice_id,
        teid=teid,
        point=point,
        direction=direction,
        data=data[: min(captured, layout.EVIDENCE_SNAPLEN)],
    )


class EvidenceTap:
    """capture(slice ids) sets the slices whose frames are copied (the
    rest are cleared); frames() drains what was copied since the last
    call; missed() is how many frames found the ring full, in all."""

    def __init__(self, dataplane: Any) -> None:
        self.dataplane = dataplane
        self.ring = RingBuffer(dataplane.map_fd(RING))
        try:
            self._missed_fd = dataplane.map_fd(MISSED)
            # what an agent that died left flagged (a pinned data path
            # counts on without one) is cleared: nothing would drain it
            self.flagged: frozenset[int] = frozenset(range(layout.MAX_SLICES))
            self.capture(())
        except BaseException:
            self.ring.close()
            raise

    def capture(self, slice_ids: Iterable[int]) -> None:
        wanted = frozenset(slice_ids)
        if wanted == self.flagged:
            return
        table = self.dataplane.table("slice_config")
        for slice_id in wanted ^ self.flagged:
            key = ctypes.c_uint32(slice_id)
            entry = layout.SliceConfig.from_buffer_copy(bytes(table[key]))
            on = slice_id in wanted
            flags = (
                entry.flags | layout.SLICE_EVIDENCE if on else entry.flags & ~layout.SLICE_EVIDENCE
            )
            if flags != entry.flags:
                entry.flags = flags
                table[key] = entry
        self.dataplane.set_evidence(bool(wanted))
        self.flagged = wanted

    def frames(self) -> list[EvidenceFrame]:
        offset = time.time_ns() - time.monotonic_ns()  # bpf_ktime_get_ns is CLOCK_MONOTONIC
        return [decode(record, offset) for record in self.ring.records()]

    def missed(self) -> int:
        cpus = libbpf.possible_cpus()
        raw = libbpf.lookup_elem(self._missed_fd, bytes(4), 8 * cpus)
        if raw is None:
            return 0
        return sum(int.from_bytes(raw[i * 8 : i * 8 + 8], "little") for i in range(cpus))

    def close(self) -> None:
        """Stops the capture and lets go of the ring."""
        self.capture(())
        self.ring.close()
