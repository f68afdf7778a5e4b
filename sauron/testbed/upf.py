"""The reference UPF: GTP-U on UDP 2152 towards the gNB, a TUN device
(`ogstun`, as Open5GS names it) towards N6, a session table from the
sessions file, downlink encapsulation with a PDU Session Container carrying
the QFI, optional sequence numbers, echo handling, and per-slice impairments.

Run inside the UPF namespace: python -m sauron.testbed.upf ARGS
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ipaddress
import random
import signal
import socket
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from sauron.testbed import codec
from sauron.testbed.impair import SliceImpairment
from sauron.testbed.node import (
    N3_RECEIVE_BUFFER,
    SO_RCVBUFFORCE,
    TunnelNode,
    every,
    handle_echo,
    later,
    send_echo_request,
    serve_node,
    setup_tun,
    write_tun,
)
from sauron.testbed.sessions import Impairment, SessionsFile, UeSession, load_sessions
from sauron.testbed.truth import Tally


class ReferenceUpf(asyncio.DatagramProtocol):
    def __init__(self, sessions: SessionsFile, gnb: str, tun_fd: int) -> None:
        self.truth = Tally()
        self.by_ul_teid = {s.ul_teid: s for s in sessions.sessions}
        self.by_ue = {s.ue_ip.packed: s for s in sessions.sessions}
        self.gnb = (gnb, codec.GTPU_PORT)
        self.tun_fd = tun_fd
        self.impair: dict[tuple[str, str], SliceImpairment] = {}
        self.impairments_applied = 0
        # how long each forwarded packet was held here, by slice/direction,
        # since the impairments last changed: the ground truth for the
        # transit latency Sauron reports
        self.holds_ms: dict[str, list[float]] = {}
        self.holds_before: dict[str, dict[str, float]] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self.receive_buffer = N3_RECEIVE_BUFFER
        self.set_impairments(sessions)
        self.dl_seq: dict[int, int] = {}
        self.echo_seq = 0
        self.loop = asyncio.get_event_loop()
        #: monotonic time the datagram being handled reached the N3 socket
        self.n3_arrival: float | None = None

    def _held(self, slice_name: str, direction: str, since: float) -> None:
        key = f"{slice_name}/{direction}"
        self.holds_ms.setdefault(key, []).append((time.monotonic() - since) * 1000)

    def hold_summary(self) -> dict[str, dict[str, float]]:
        out = {}
        for key, samples in self.holds_ms.items():
            ordered = sorted(samples)
            out[key] = {
                "count": len(ordered),
                "p50_ms": statistics.median(ordered),
                "p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
            }
        return out

    def send_echo(self) -> None:
        assert self.transport is not None
        self.echo_seq = send_echo_request(self.transport, self.gnb, self.echo_seq, self.truth)

    def set_impairments(self, sessions: SessionsFile) -> None:
        """(Re)applies the sessions file's impairments, e.g. on SIGHUP."""
        # a fresh, reproducible random stream for every application
        rng = random.Random(sessions.seed + self.impairments_applied)
        self.impairments_applied += 1
        # the holds of the impairments being replaced stay readable
        self.holds_before = self.hold_summary()
        self.holds_ms = {}
        slices = {s.slice for s in sessions.sessions}
        self.impair = {
            (name, d): SliceImpairment(
                sessions.impairments.get(name, Impairment()), random.Random(rng.random())
            )
            for name in slices
            for d in ("ul", "dl")
        }
        self.receive_buffer = sessions.n3_receive_buffer or N3_RECEIVE_BUFFER
        self._apply_receive_buffer()
        self.truth.note("impairments_applied")

    def _apply_receive_buffer(self) -> None:
        """The N3 socket's receive buffer as the sessions file says: a small
        one overflows on bursts, as a UPF's left at the system default does."""
        if self.transport is not None:
            sock: socket.socket = self.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, self.receive_buffer)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._apply_receive_buffer()

    # uplink: N3 -> N6
    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        # when the kernel received it, where the reader knows (queueing in
        # the socket is time spent in this UPF too)
        arrived = self.n3_arrival or time.monotonic()
        msg = codec.decapsulate(data)
        if msg is None:
            self.truth.note("n3_not_gtpu")
            return
        if handle_echo(msg, self.transport, addr, self.truth):
            return
        if msg.msg_type != codec.G_PDU:
            self.truth.note(f"n3_message_{msg.msg_type}")
            return
        session = self.by_ul_teid.get(msg.teid)
        if session is None:
            self.truth.note("ul_unknown_teid")
            return
        self.truth.add(session.slice, session.ul_teid, "ul_received", codec.frame_bytes(len(data)))
        impairment = self.impair[(session.slice, "ul")]
        verdict = impairment.verdict(len(msg.payload))
        if verdict != "pass":
            self.truth.add(session.slice, session.ul_teid, f"ul_{verdict}", len(msg.payload))
            return
        payload = msg.payload

        def forward() -> None:
            if write_tun(self.tun_fd, payload):
                self._held(session.slice, "ul", arrived)
                self.truth.add(session.slice, session.ul_teid, "ul_forwarded", len(payload) + 14)
            else:
                self.truth.add(session.slice, session.ul_teid, "ul_tun_error", len(payload))

        later(self.loop, impairment.delay_s(), forward)

    # downlink: N6 -> N3
    def tun_packet(self, packet: bytes) -> None:
        arrived = time.monotonic()
        if len(packet) < 20 or packet[0] >> 4 != 4:
            self.truth.note("dl_not_ipv4")
            return
        session = self.by_ue.get(packet[16:20])
        if session is None:
            self.truth.note("dl_unknown_ue")
            return
        self.truth.add(session.slice, session.dl_teid, "dl_received", len(packet) + 14)
        impairment = self.impair[(session.slice, "dl")]
        verdict = impairment.verdict(len(packet))
        if verdict != "pass":
            self.truth.add(session.slice, session.dl_teid, f"dl_{verdict}", len(packet))
            return
        later(self.loop, impairment.delay_s(), lambda: self._send_dl(session, packet, arrived))

    def _send_dl(self, session: UeSession, packet: bytes, arrived: float) -> None:
        seq = None
        if session.sequence_numbers:
            seq = self.dl_seq.get(session.dl_teid, 0)
            self.dl_seq[session.dl_teid] = (seq + 1) & 0xFFFF
        qfi = session.qfi if session.downlink_container else None
        gtp = codec.encapsulate(session.dl_teid, packet, qfi=qfi, uplink=False, seq=seq)
        assert self.transport is not None
        self.transport.sendto(gtp, self.gnb)
        self._held(session.slice, "dl", arrived)
        self.truth.add(session.slice, session.dl_teid, "dl_sent", codec.frame_bytes(len(gtp)))


async def run(args: argparse.Namespace, sessions: SessionsFile, tun_fd: int) -> None:
    loop = asyncio.get_running_loop()

    def on_start(node: TunnelNode) -> Callable[[], None] | None:
        upf: ReferenceUpf = node  # type: ignore[assignment]
        # SIGHUP: read the sessions file again and apply its impairments
        loop.add_signal_handler(
            signal.SIGHUP, lambda: upf.set_impairments(load_sessions(Path(args.sessions)))
        )
        upf.truth.extra = lambda: {
            "holds": upf.hold_summary(),
            "holds_before": upf.holds_before,
        }
        return every(loop, args.echo_interval, upf.send_echo)

    await serve_node(
        "upf",
        lambda: ReferenceUpf(sessions, args.gnb, tun_fd),
        args.n3,
        (args.tun, tun_fd),
        Path(args.truth),
        on_start,
    )


def set_process_name(name: str) -> None:
    """The kernel's name of this process (what `ps -o comm` and the energy
    estimator's name watch see), at most 15 bytes."""
    pr_set_name = 15
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_name, name.encode()[:15], 0, 0, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description="reference UPF for the Sauron testbed")
    parser.add_argument("--sessions", required=True)
    parser.add_argument("--n3", required=True, help="N3 address to listen on")
    parser.add_argument("--gnb", required=True, help="gNB N3 address")
    parser.add_argument("--tun", default="ogstun")
    parser.add_argument(
        "--ue-pool", action="append", default=[], help="UE subnet routed into the TUN"
    )
    parser.add_argument("--truth", required=True, help="where to write the ground truth")
    parser.add_argument("--echo-interval", type=float, default=1.0, help="0: send no echo")
    parser.add_argument(
        "--slice", default=None, help="serve only this slice's sessions (one UPF per slice)"
    )
    parser.add_argument(
        "--title", default=None, help="process name (comm), as a real UPF has its own"
    )
    args = parser.parse_args()
    if args.title:
        set_process_name(args.title)
    sessions = load_sessions(Path(args.sessions))
    if args.slice is not None:
        sessions = sessions.model_copy(
            update={"sessions": [s for s in sessions.sessions if s.slice == args.slice]}
        )
    gateways = [
        f"{ipaddress.ip_network(p).network_address + 1}/{ipaddress.ip_network(p).prefixlen}"
        for p in args.ue_pool
    ]
    tun_fd = setup_tun(args.tun, gateways)
    asyncio.run(run(args, sessions, tun_fd))


if __name__ == "__main__":
    main()
