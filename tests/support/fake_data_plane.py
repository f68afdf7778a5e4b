"""A data plane the test feeds, for the agent's runtime in place of the
loaded programs (sauron.agent.runtime.DataPath): no kernel, no root.
read() returns the counters the test has set so far (each reading a copy of
its own, as the maps' are), raises (a copy of) `failure` while it is set, and does not
return while `released` is clear (a map or /proc read stuck in the kernel
fails nothing)."""

from __future__ import annotations

import copy
import threading

import numpy as np

from sauron.abi import layout
from sauron.bpf.maps import DataPlaneCounters
from sauron.bpf.session_table import SessionTable
from sauron.catalog import Catalog

#: the sessions' key sizes: TEID, UE address
TEID_KEY, UE_KEY = 4, 16


class FakeDataPlane:
    def __init__(self, catalog: Catalog) -> None:
        self.slices = catalog.slice_rows
        #: (point, slice id, direction) -> [packets, bytes], monotonic
        self.traffic: dict[tuple[int, int, int], list[int]] = {}
        self.failure: BaseException | None = None
        self.released = threading.Event()
        self.released.set()
        self.readings = 0
        #: uplink G-PDUs that failed each security check, [slice id, kind], monotonic
        self.security = np.zeros((self.slices, layout.SEC_KINDS), np.uint64)
        #: whether the checks run
        self.security_on = False
        #: the test counts on its thread, the engine reads on its own
        self._lock = threading.Lock()

    def count(self, point: int, slice_id: int, direction: int, packets: int, size: int) -> None:
        """`packets` frames of `size` bytes seen at `point`."""
        with self._lock:
            row = self.traffic.setdefault((point, slice_id, direction), [0, 0])
            row[0] += packets
            row[1] += packets * size

    def failed_check(self, slice_id: int, kind: int, frames: int) -> None:
        """`frames` G-PDUs of the slice that failed the check `kind` (layout.SEC_*)."""
        with self._lock:
            self.security[slice_id, kind] += np.uint64(frames)

    def read(self) -> DataPlaneCounters:
        self.released.wait()
        if self.failure is not None:
            raise copy.copy(self.failure)  # a fresh one each time, its own traceback
        self.readings += 1
        slice_stats = [layout.SliceStats() for _ in range(self.slices * layout.SLICE_STATS_ROWS)]
        with self._lock:
            traffic = {key: tuple(row) for key, row in self.traffic.items()}
            security = self.security.copy()
        for (point, slice_id, direction), (packets, octets) in traffic.items():
            stats = slice_stats[layout.slice_stats_index(point, slice_id, direction)]
            stats.packets, stats.bytes = packets, octets
        return DataPlaneCounters(
            slice_stats=slice_stats,
            qfi_stats=[layout.Traffic() for _ in range(self.slices * layout.QFI_STATS_ROWS)],
            events=[0] * (layout.POINTS * layout.EVENTS),
            teids=SessionTable.empty(TEID_KEY),
            ues=SessionTable.empty(UE_KEY),
            security=security,
            security_on=self.security_on,
        )
