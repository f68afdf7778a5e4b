"""A fast frame generator: an AF_PACKET socket that hands the kernel a
prebuilt batch of frames per system call (sendmmsg through ctypes, the
qdisc bypassed), so Python's cost is per batch, not per frame."""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import time
from dataclasses import dataclass

SOL_PACKET = 263
PACKET_QDISC_BYPASS = 20
BATCH = 512


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.POINTER(_Iovec)),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint)]


@dataclass
class Sent:
    frames: int
    seconds: float
    cpu_seconds: float

    @property
    def pps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


class FrameGenerator:
    """Sends `frames` round-robin out of `ifname` (in the calling thread's
    namespace, which the socket keeps)."""

    def __init__(self, ifname: str, frames: list[bytes]) -> None:
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        self.sock.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
        self.sock.bind((ifname, 0))
        self.libc = ctypes.CDLL(None, use_errno=True)
        # one batch covers whole rounds of the frame list where it can
        count = len(frames) * max(1, BATCH // len(frames))
        self._buffers = [ctypes.create_string_buffer(f, len(f)) for f in frames]
        self._iov = (_Iovec * count)()
        self._msgs = (_Mmsghdr * count)()
        for i in range(count):
            buf = self._buffers[i % len(frames)]
            self._iov[i] = _Iovec(ctypes.cast(buf, ctypes.c_void_p), len(frames[i % len(frames)]))
            self._msgs[i].msg_hdr.msg_iov = ctypes.pointer(self._iov[i])
            self._msgs[i].msg_hdr.msg_iovlen = 1
        self.batch = count
        self.frame_count = len(frames)
        #: how many frames each send call took, for exact per-frame counts
        self.calls: list[int] = []

    def _send_batch(self, n: int) -> int:
        sent = int(self.libc.sendmmsg(self.sock.fileno(), self._msgs, n, 0))
        if sent < 0:
            err = ctypes.get_errno()
            if err in (errno.ENOBUFS, errno.EAGAIN):  # the device is busy: try again
                return 0
            raise OSError(err, f"sendmmsg: {os.strerror(err)}")
        return sent

    def flood(self, seconds: float) -> Sent:
        """As fast as it goes for `seconds`."""
        frames = 0
        cpu0, t0 = time.process_time(), time.perf_counter()
        end = t0 + seconds
        while time.perf_counter() < end:
            frames += self._send_batch(self.batch)
        return Sent(frames, time.perf_counter() - t0, time.process_time() - cpu0)

    def paced(self, total: int, pps: float) -> Sent:
        """Exactly `total` frames at about `pps`, in batches of the frame
        list's size."""
        frames = 0
        cpu0, t0 = time.process_time(), time.perf_counter()
        while frames < total:
            n = min(self.batch, total - frames)
            sent = self._send_batch(n)
            self.calls.append(sent)
            frames += sent
            lag = t0 + frames / pps - time.perf_counter()
            if lag > 0:
                time.sleep(lag)
        return Sent(frames, time.perf_counter() - t0, time.process_time() - cpu0)

    def sent_per_frame(self) -> list[int]:
        """How often each frame of the list went out in paced() calls (each
        batch starts at the list's first frame)."""
        counts = [0] * self.frame_count
        for sent in self.calls:
            rounds, rest = divmod(sent, self.frame_count)
            for i in range(self.frame_count):
                counts[i] += rounds + (1 if i < rest else 0)
        return counts

    def close(self) -> None:
        self.sock.close()
