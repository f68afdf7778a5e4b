"""Reading a BPF ring buffer (BPF_MAP_TYPE_RINGBUF) from its descriptor, as
the kernel lays it out for user space: a consumer page the reader writes
its position to, then a producer page and the data area, mapped twice in a
row so that a record that wraps reads as one run of bytes. No library
call: the agent holds only the map's descriptor (a pin), not bcc."""

from __future__ import annotations

import mmap
import os
import struct

from sauron.bpf import libbpf

#: a record's length word: still being written, or given up by its writer
BUSY = 1 << 31
DISCARD = 1 << 30
HEADER_BYTES = 8
_POSITION = struct.Struct("<Q")
_LENGTH = struct.Struct("<I")


class RingBuffer:
    """records() returns every record submitted since the last call, oldest
    first, and frees their space for the programs."""

    def __init__(self, map_fd: int) -> None:
        info = libbpf.map_info(map_fd)
        if info.map_type != libbpf.MAP_TYPE_RINGBUF:
            raise ValueError(f"map type {info.map_type} is not a ring buffer")
        self.size = info.max_entries
        self.mask = self.size - 1
        page = mmap.PAGESIZE
        self._fd = os.dup(map_fd)
        try:
            self._consumer = mmap.mmap(
                self._fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
            )
            self._producer = mmap.mmap(
                self._fd, page + 2 * self.size, mmap.MAP_SHARED, mmap.PROT_READ, offset=page
            )
        except OSError:
            os.close(self._fd)
            raise
        self._data = page  # where the data area starts in the producer's mapping

    def records(self) -> list[bytes]:
        found: list[bytes] = []
        consumer = _POSITION.unpack_from(self._consumer, 0)[0]
        producer = _POSITION.unpack_from(self._producer, 0)[0]
        while consumer < producer:
            at = self._data + (consumer & self.mask)
            word = _LENGTH.unpack_from(self._producer, at)[0]
            if word & BUSY:
                break  # reserved, not yet submitted: the next reading takes it
            length = word & ~(BUSY | DISCARD)
            if not word & DISCARD:
                start = at + HEADER_BYTES
                found.append(self._producer[start : start + length])
            consumer += (length + HEADER_BYTES + 7) & ~7
        _POSITION.pack_into(self._consumer, 0, consumer)
        return found

    def close(self) -> None:
        if self._fd >= 0:
            self._consumer.close()
            self._producer.close()
            os.close(self._fd)
            self._fd = -1
