"""The testbed's ground truth counts what the kernel dropped on a node's
behalf: a real UDP socket and a real TUN device are overflowed, and every
datagram sent is either read back or counted as dropped."""

from __future__ import annotations

import errno
import os
import socket

import pytest

from sauron.host.netns import Topology, inside
from sauron.testbed.kernel_drops import interface_drops, socket_drops
from sauron.testbed.node import setup_tun

pytestmark = [pytest.mark.kernel]

SENT = 400
#: more than a TUN device's queue holds (txqueuelen 500)
SENT_TO_TUN = 1200


def read_all_datagrams(sock: socket.socket) -> int:
    sock.setblocking(False)
    count = 0
    while True:
        try:
            sock.recv(2048)
        except BlockingIOError:
            return count
        count += 1


def test_a_full_socket_buffer_is_counted_as_drops() -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx,
    ):
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        rx.bind(("127.0.0.1", 0))
        assert socket_drops(rx) == 0
        for _ in range(SENT):
            tx.sendto(bytes(500), rx.getsockname())
        queued = read_all_datagrams(rx)
        dropped = socket_drops(rx)
    assert dropped is not None and dropped > 0 and queued > 0
    assert queued + dropped == SENT


def test_a_full_tun_queue_is_counted_as_transmit_drops() -> None:
    with Topology() as topo:
        ns = topo.namespace("tun")
        with inside(ns):
            fd = setup_tun("drops0", ["10.77.0.1/24"])
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
                    for _ in range(SENT_TO_TUN):
                        tx.sendto(bytes(100), ("10.77.0.2", 9))
                queued = 0
                while True:
                    try:
                        packet = os.read(fd, 2048)
                    except OSError as exc:
                        assert exc.errno == errno.EAGAIN
                        break
                    # only the datagrams sent above: the kernel may also
                    # send its own (IPv6 router solicitations and the like)
                    queued += packet[0] >> 4 == 4 and packet[16:20] == bytes([10, 77, 0, 2])
                drops = interface_drops("drops0")
                assert interface_drops("no-such-if") is None
            finally:
                os.close(fd)
    assert drops is not None and drops["tx_dropped"] > 0 and queued > 0
    # the kernel's own packets may also have been dropped: at least ours were
    assert queued + drops["tx_dropped"] >= SENT_TO_TUN and queued <= SENT_TO_TUN
