"""The UEs' applications of the demo's three slices, each on a thread, all
stopped by one event: eMBB UEs download over TCP (at a streaming pace, or
in bulk as fast as their UPF carries them), URLLC UEs send small periodic
UDP, mMTC UEs (many) send sparse UDP."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sauron.testbed.bed import N6_DN, TCP_SOURCE_PORT, UDP_ECHO_PORT, Testbed
from sauron.testbed.sessions import SessionsFile

URLLC_PERIOD_S = 0.01
MMTC_PERIOD_S = 1.0
#: a streaming eMBB UE reads this many bits per second (a video stream)
STREAM_MBPS = 4.0
#: the receive buffer of a streaming UE: small, so that TCP's flow control,
#: not a buffer filling, holds the server to the stream's pace
STREAM_RECEIVE_BUFFER = 64 * 1024
#: how often a streaming UE reads its share
STREAM_TICK_S = 0.02


@dataclass
class Traffic:
    """Every UE application of `sessions`. eMBB streams at STREAM_MBPS per
    UE until `bulk` is set, then downloads as fast as it can."""

    bed: Testbed
    sessions: SessionsFile
    bulk: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    downloaded: int = 0

    def ues(self, slice_name: str) -> list[str]:
        return [str(s.ue_ip) for s in self.sessions.sessions if s.slice == slice_name]

    def start(self, bulk: bool = True) -> None:
        """bulk: eMBB downloads in bulk from the start (else it streams)."""
        if bulk:
            self.bulk.set()
        for ue in self.ues("embb"):
            self._spawn(self._download, ue)
        self._spawn(self._periodic, self.ues("urllc"), URLLC_PERIOD_S, 64)
        mmtc = self.ues("mmtc")
        self._spawn(self._periodic, mmtc, MMTC_PERIOD_S / len(mmtc), 40, True)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _connect(self, ue: str) -> socket.socket | None:
        try:
            return self.bed.ue_tcp_connection(
                ue, TCP_SOURCE_PORT, timeout=1.0, receive_buffer=STREAM_RECEIVE_BUFFER
            )
        except OSError:
            time.sleep(0.2)
            return None

    def _download(self, ue: str) -> None:
        while not self.stop.is_set():
            conn = self._connect(ue)
            if conn is None:
                continue
            with conn:
                self._read(conn)

    def _read(self, conn: socket.socket) -> None:
        """Reads until the server leaves or the traffic stops: as fast as
        it comes in bulk, else STREAM_MBPS worth per tick."""
        allowance, last = 0.0, time.monotonic()
        while not self.stop.is_set():
            want = 65536
            if not self.bulk.is_set():
                now = time.monotonic()
                allowance = min(allowance + (now - last) * STREAM_MBPS * 1e6 / 8, 65536)
                last = now
                if allowance < 1500:
                    time.sleep(STREAM_TICK_S)
                    continue
                want = int(allowance)
            try:
                chunk = conn.recv(want)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            allowance -= len(chunk)
            self.downloaded += len(chunk)

    def _periodic(
        self, ues: list[str], period: float, size: int, one_at_a_time: bool = False
    ) -> None:
        socks = [self.bed.ue_udp_socket(ue) for ue in ues]
        for sock in socks:
            sock.setblocking(False)
        turn = 0
        next_at = time.monotonic()
        while not self.stop.is_set():
            senders = [socks[turn % len(socks)]] if one_at_a_time else socks
            turn += 1
            for sock in senders:
                with contextlib.suppress(OSError):
                    sock.sendto(bytes(size), (N6_DN, UDP_ECHO_PORT))
            for sock in socks:
                with contextlib.suppress(OSError):
                    while sock.recv(2048):
                        pass
            next_at += period
            time.sleep(max(0.0, next_at - time.monotonic()))
        for sock in socks:
            sock.close()

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=3)
