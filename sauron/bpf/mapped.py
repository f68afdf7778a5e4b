"""The CPU-major counter arrays (sauron_shared.h) mapped into the agent's
memory: the kernel's live values read in place, with no system call and no
copy of rows nobody asked for."""

from __future__ import annotations

import contextlib
import ctypes
import mmap
from typing import Any

import numpy as np

from sauron.bpf import libbpf


class MappedArray:
    """One BPF_F_MMAPABLE array holding `rows` entries for each possible
    CPU. `view()` is a numpy array shaped [cpu, row] of the kernel's memory:
    values change under it while programs run, so read what you need and
    copy it (a sum does). An array shared by every CPU (cpu_major=False)
    is one CPU's worth of rows."""

    def __init__(self, table: Any, value_type: type[Any], cpu_major: bool = True) -> None:
        self.value_type = value_type
        self.value_size = ctypes.sizeof(value_type)
        self.cpus = libbpf.possible_cpus() if cpu_major else 1
        entries = int(table.max_entries)
        if entries % self.cpus:
            raise ValueError(
                f"map {table.name!r}: {entries} entries is no whole number of rows for "
                f"{self.cpus} CPUs (was the object built for another CPU count?)"
            )
        self.rows = entries // self.cpus
        # the kernel lays out an mmapable array's values 8-byte aligned from
        # the start of a page-aligned area
        self.stride = (self.value_size + 7) & ~7
        length = entries * self.stride
        pages = (length + mmap.PAGESIZE - 1) // mmap.PAGESIZE * mmap.PAGESIZE
        self._map = mmap.mmap(int(table.map_fd), pages, mmap.MAP_SHARED, mmap.PROT_READ)
        self._length = length

    def view(self, dtype: Any) -> np.ndarray:
        """The array as `dtype` entries (its itemsize the stride), [cpu, row]."""
        values = np.frombuffer(
            self._map, dtype=dtype, count=self._length // np.dtype(dtype).itemsize
        )
        return values.reshape(self.cpus, -1)

    def words(self, rows: int | None = None) -> np.ndarray:
        """The first `rows` rows of every CPU as 64-bit words: [cpu, row, word]."""
        assert self.stride % 8 == 0
        all_words = np.frombuffer(self._map, dtype="<u8", count=self._length // 8)
        shaped = all_words.reshape(self.cpus, self.rows, self.stride // 8)
        return shaped if rows is None else shaped[:, : min(rows, self.rows)]

    def summed_words(self, rows: int | None = None) -> np.ndarray:
        """The first `rows` rows summed over CPUs (modulo 2^64): [row, word]."""
        summed: np.ndarray = self.words(rows).sum(axis=0, dtype=np.uint64)
        return summed

    def close(self) -> None:
        # a view still held keeps the mapping until it goes
        with contextlib.suppress(BufferError):
            self._map.close()
