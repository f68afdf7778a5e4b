"""What the testbed's node processes share: a TUN reader on the event loop,
readiness on stdout, and writing the ground truth on SIGTERM."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from sauron.testbed import codec
from sauron.testbed.kernel_drops import interface_drops, socket_drops
from sauron.testbed.truth import Tally
from sauron.testbed.tun import open_tun

TUN_MTU = 2000
#: packets read from the TUN device, and datagrams from the N3 socket, per
#: turn of the event loop: neither direction starves the other
TUN_BATCH = 32
N3_BATCH = 32
#: the N3 socket's receive buffer: room for a burst while the loop is busy
N3_RECEIVE_BUFFER = 4 << 20
#: <asm-generic/socket.h>; Python's socket module names it from 3.12 on
SO_RCVBUFFORCE = 33


def drain_tun(fd: int, handle: Callable[[bytes], None]) -> None:
    """Reads up to TUN_BATCH packets waiting on a non-blocking TUN fd."""
    for _ in range(TUN_BATCH):
        try:
            packet = os.read(fd, TUN_MTU)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.EAGAIN:
                return
            raise
        handle(packet)


class N3Socket(asyncio.DatagramTransport):
    """The node's GTP-U socket, read in batches by drain_n3 (asyncio's own
    datagram transport reads one datagram per turn of the loop, so a TUN
    burst would leave N3 waiting); sends go straight out."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(extra={"socket": sock})
        self.sock = sock
        #: sends the kernel refused (asyncio's transport would have dropped
        #: them too, after telling error_received)
        self.send_errors = 0

    def sendto(self, data: bytes | bytearray | memoryview, addr: Any = None) -> None:
        try:
            self.sock.sendto(data, addr)
        except OSError:
            self.send_errors += 1

    def close(self) -> None:
        self.sock.close()

    def is_closing(self) -> bool:
        return self.sock.fileno() == -1


#: <asm-generic/socket.h>: the kernel's receive time of each datagram
SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("@qq")


def drain_n3(sock: socket.socket, node: Any) -> None:
    """Reads up to N3_BATCH datagrams waiting on the N3 socket. Each one's
    arrival (on the monotonic clock) is the kernel's receive time, so a
    node's hold times include the time a datagram waited in the socket."""
    for _ in range(N3_BATCH):
        try:
            data, ancillary, _, addr = sock.recvmsg(65535, 64, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        node.n3_arrival = time.monotonic()
        for level, kind, raw in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= 16:
                sec, nsec = _TIMESPEC.unpack_from(raw)
                node.n3_arrival -= max(0.0, time.time() - (sec + nsec / 1e9))
        node.datagram_received(data, addr)


def write_tun(fd: int, packet: bytes) -> bool:
    try:
        os.write(fd, packet)
        return True
    except OSError:
        return False


async def serve_until_terminated(on_stop: Callable[[], None]) -> None:
    """Says "ready", then waits for SIGTERM or SIGINT and runs on_stop."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    on_stop()
    sys.stdout.flush()


def setup_tun(name: str, addresses: list[str], routes: list[str] | None = None) -> int:
    """Opens TUN `name`, gives it the addresses ("a.b.c.d/len") and routes
    and brings it up. Runs before the event loop starts: pyroute2's
    synchronous API runs a loop of its own."""
    from pyroute2 import IPRoute

    fd = open_tun(name)
    with IPRoute() as ipr:
        idx = ipr.link_lookup(ifname=name)[0]
        for addr in addresses:
            iface = ipaddress.ip_interface(addr)
            ipr.addr("add", index=idx, address=str(iface.ip), prefixlen=iface.network.prefixlen)
        ipr.link("set", index=idx, state="up", mtu=1400)
        for route in routes or []:
            net = ipaddress.ip_network(route)
            ipr.route("add", dst=str(net.network_address), dst_len=net.prefixlen, oif=idx)
    return fd


def every(
    loop: asyncio.AbstractEventLoop, interval: float, action: Callable[[], None]
) -> Callable[[], None] | None:
    """Runs action now and every interval seconds; returns how to stop it
    (None when interval is 0: never)."""
    if interval <= 0:
        return None
    handle: asyncio.TimerHandle | None = None

    def tick() -> None:
        nonlocal handle
        action()
        handle = loop.call_later(interval, tick)

    tick()
    return lambda: handle.cancel() if handle else None


def later(loop: asyncio.AbstractEventLoop, delay: float, action: Callable[[], None]) -> None:
    """Runs action after delay seconds, or now when there is none."""
    if delay > 0:
        loop.call_later(delay, action)
    else:
        action()


def send_echo_request(
    transport: asyncio.DatagramTransport, peer: tuple[str, int], seq: int, truth: Tally
) -> int:
    """Sends a GTP-U echo request; returns the next sequence number."""
    transport.sendto(codec.encapsulate(0, b"", seq=seq, msg_type=codec.ECHO_REQUEST), peer)
    truth.note("echo_requests_sent")
    return (seq + 1) & 0xFFFF


def handle_echo(
    msg: codec.Decoded,
    transport: asyncio.DatagramTransport | None,
    addr: tuple[str, int],
    truth: Tally,
) -> bool:
    """Answers an echo request (Recovery IE, same sequence number) and notes
    an echo response; True when msg was either."""
    if msg.msg_type == codec.ECHO_RESPONSE:
        truth.note("echo_responses_received")
        return True
    if msg.msg_type != codec.ECHO_REQUEST:
        return False
    truth.note("echo_requests_received")
    reply = codec.encapsulate(0, b"\x0e\x00", seq=msg.seq or 0, msg_type=codec.ECHO_RESPONSE)
    assert transport is not None
    transport.sendto(reply, addr)
    truth.note("echo_responses_sent")
    return True


class TunnelNode(Protocol):
    truth: Tally

    def tun_packet(self, packet: bytes) -> None: ...


async def serve_node(
    name: str,
    make: Callable[[], asyncio.DatagramProtocol],
    n3: str,
    tun: tuple[str, int],
    truth_path: Path,
    on_start: Callable[[TunnelNode], Callable[[], None] | None] | None = None,
) -> None:
    """Binds GTP-U on N3, feeds packets from the TUN device (name, fd) to
    the node, and on SIGTERM writes its ground truth, with what the kernel
    dropped on its behalf. on_start may return a callable run at stop."""
    loop = asyncio.get_running_loop()
    tun_name, tun_fd = tun
    n3_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    n3_socket.bind((n3, codec.GTPU_PORT))
    # as root the buffer may exceed net.core.rmem_max
    n3_socket.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, N3_RECEIVE_BUFFER)
    n3_socket.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    transport = N3Socket(n3_socket)
    protocol = make()
    protocol.connection_made(transport)
    node: TunnelNode = protocol  # type: ignore[assignment]
    loop.add_reader(n3_socket.fileno(), drain_n3, n3_socket, protocol)
    loop.add_reader(tun_fd, drain_tun, tun_fd, node.tun_packet)
    on_stop = on_start(node) if on_start else None

    def write_truth() -> None:
        drops = {
            "n3_socket": socket_drops(n3_socket),
            "n3_send_errors": transport.send_errors,
            "tun": interface_drops(tun_name),
        }
        node.truth.write(truth_path, {"node": name, "kernel_drops": drops, **node.truth.extra()})

    # SIGUSR1: the ground truth so far, while the node runs on
    loop.add_signal_handler(signal.SIGUSR1, write_truth)

    def stop() -> None:
        if on_stop is not None:
            on_stop()
        loop.remove_reader(tun_fd)
        loop.remove_reader(n3_socket.fileno())
        write_truth()
        transport.close()

    await serve_until_terminated(stop)
