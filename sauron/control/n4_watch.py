"""Watching N4: PFCP datagrams read off an interface with an AF_PACKET
socket, filtered in the kernel (sauron/bpf/c/n4/pfcp_filter.c) so only UDP 8805 reaches
user space, and fed to the PFCP learner. The agent neither sends nor
answers PFCP: it sees the SMF and the UPF talk, on the UPF's (or the SMF's)
N4 interface, or on a port that mirrors it."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable
from typing import Any

from sauron.control.pfcp_learner import PfcpLearner
from sauron.host.netns import inside
from sauron.pfcp.datagrams import NotPfcp, from_ip

log = logging.getLogger(__name__)

ETH_P_ALL = 0x0003
SO_ATTACH_BPF = 50  # <asm-generic/socket.h>
SO_RCVBUFFORCE = 33
SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_OUTGOING = 4
ARPHRD_LOOPBACK = 772
RECEIVE_BUFFER = 8 << 20
#: datagrams read per turn of the event loop, so the loop stays responsive
BATCH = 256


class N4Watch:
    def __init__(
        self,
        ifname: str,
        netns: str | None,
        learner: PfcpLearner,
        filter_fd: int,
        after_batch: Callable[[], object] = lambda: None,
    ) -> None:
        self.ifname = ifname
        self.netns = netns
        self.learner = learner
        self.after_batch = after_batch
        with inside(netns):  # the socket stays in the namespace it was made in
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_BPF, struct.pack("i", filter_fd))
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
            sock.bind((ifname, 0))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self.sock = sock
        self.datagrams = 0
        self.kernel_drops = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        loop.add_reader(self.sock.fileno(), self.read_ready)

    def read_ready(self) -> None:
        for _ in range(BATCH):
            try:
                data, address = self.sock.recvfrom(65535)
            except BlockingIOError:
                break
            _, proto, pkttype, hatype, _ = address
            # on loopback every packet is seen leaving and arriving
            if hatype == ARPHRD_LOOPBACK and pkttype == PACKET_OUTGOING:
                continue
            try:
                datagram = from_ip(proto, data)
            except NotPfcp as exc:
                if exc.reason != "other":
                    self.learner.rejects[exc.reason] += 1
                continue
            self.datagrams += 1
            self.learner.feed(datagram.payload, datagram.src, datagram.dst)
        self.after_batch()

    def stats(self) -> dict[str, Any]:
        """Datagrams read, and those the kernel dropped because the socket
        was full (read and reset by the kernel on each call)."""
        raw = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
        _, drops = struct.unpack("II", raw)
        self.kernel_drops += drops
        return {
            "interface": self.ifname,
            "netns": self.netns,
            "datagrams": self.datagrams,
            "kernel_drops": self.kernel_drops,
        }

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self.sock.fileno())
            self._loop = None
        self.sock.close()
