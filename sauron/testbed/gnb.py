"""The gNB with its UEs: a TUN device (`uesimtun0`, as UERANSIM names it)
holding every UE address, so that ordinary kernel sockets bound to a UE
address send and receive through the tunnel; uplink G-PDUs with a UL PDU
Session Container, optional sequence numbers, GTP-U echo both ways, an
injected radio-side uplink loss and a radio delay (both directions) per
slice.

Run inside the gNB namespace: python -m sauron.testbed.gnb ARGS
"""

from __future__ import annotations

import argparse
import asyncio
import random
from collections.abc import Callable
from pathlib import Path

from sauron.testbed import codec
from sauron.testbed.node import (
    TunnelNode,
    every,
    handle_echo,
    later,
    send_echo_request,
    serve_node,
    setup_tun,
    write_tun,
)
from sauron.testbed.sessions import SessionsFile, load_sessions
from sauron.testbed.truth import Tally


class Gnb(asyncio.DatagramProtocol):
    def __init__(self, sessions: SessionsFile, upf: str, tun_fd: int) -> None:
        self.by_ue = {s.ue_ip.packed: s for s in sessions.sessions}
        self.by_dl_teid = {s.dl_teid: s for s in sessions.sessions}
        self.radio_loss = sessions.uplink_radio_loss
        self.radio_delay = {k: v / 1000.0 for k, v in sessions.radio_delay_ms.items()}
        self.loop = asyncio.get_event_loop()
        self.rng = random.Random(sessions.seed + 1)
        self.upf = (upf, codec.GTPU_PORT)
        self.tun_fd = tun_fd
        self.ul_seq: dict[int, int] = {}
        self.echo_seq = 0
        self.truth = Tally()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    # uplink: UE -> N3
    def tun_packet(self, packet: bytes) -> None:
        if len(packet) < 20 or packet[0] >> 4 != 4:
            self.truth.note("ul_not_ipv4")
            return
        session = self.by_ue.get(packet[12:16])
        if session is None:
            self.truth.note("ul_unknown_ue")
            return
        seq = None
        if session.sequence_numbers:
            seq = self.ul_seq.get(session.ul_teid, 0)
            self.ul_seq[session.ul_teid] = (seq + 1) & 0xFFFF
        loss = self.radio_loss.get(session.slice, 0.0)
        if loss and self.rng.random() < loss:
            # lost on the radio: the sequence number is used up, nothing is sent
            self.truth.add(session.slice, session.ul_teid, "ul_radio_lost", len(packet))
            return
        gtp = codec.encapsulate(session.ul_teid, packet, qfi=session.qfi, uplink=True, seq=seq)

        upf = self.upf if session.upf_n3 is None else (str(session.upf_n3), codec.GTPU_PORT)

        def send() -> None:
            assert self.transport is not None
            self.transport.sendto(gtp, upf)
            self.truth.add(session.slice, session.ul_teid, "ul_sent", codec.frame_bytes(len(gtp)))

        # the radio leg holds it for the slice's radio delay, if any
        later(self.loop, self.radio_delay.get(session.slice, 0.0), send)

    # downlink: N3 -> UE
    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        msg = codec.decapsulate(data)
        if msg is None:
            self.truth.note("n3_not_gtpu")
            return
        if handle_echo(msg, self.transport, addr, self.truth):
            return
        if msg.msg_type != codec.G_PDU:
            self.truth.note(f"n3_message_{msg.msg_type}")
            return
        session = self.by_dl_teid.get(msg.teid)
        if session is None:
            self.truth.note("dl_unknown_teid")
            return
        self.truth.add(session.slice, session.dl_teid, "dl_received", codec.frame_bytes(len(data)))
        payload = msg.payload

        def deliver() -> None:
            if write_tun(self.tun_fd, payload):
                self.truth.add(session.slice, session.dl_teid, "dl_delivered", len(payload))

        later(self.loop, self.radio_delay.get(session.slice, 0.0), deliver)

    def send_echo(self) -> None:
        assert self.transport is not None
        self.echo_seq = send_echo_request(self.transport, self.upf, self.echo_seq, self.truth)


async def run(args: argparse.Namespace, sessions: SessionsFile, tun_fd: int) -> None:
    loop = asyncio.get_running_loop()

    def start_echo(node: TunnelNode) -> Callable[[], None] | None:
        gnb: Gnb = node  # type: ignore[assignment]
        return every(loop, args.echo_interval, gnb.send_echo)

    await serve_node(
        "gnb",
        lambda: Gnb(sessions, args.upf, tun_fd),
        args.n3,
        (args.tun, tun_fd),
        Path(args.truth),
        start_echo,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="gNB and UEs for the Sauron testbed")
    parser.add_argument("--sessions", required=True)
    parser.add_argument("--n3", required=True, help="gNB N3 address")
    parser.add_argument("--upf", required=True, help="UPF N3 address")
    parser.add_argument("--tun", default="uesimtun0")
    parser.add_argument(
        "--dn-route", action="append", default=[], help="DN prefix reached through the tunnel"
    )
    parser.add_argument("--echo-interval", type=float, default=1.0)
    parser.add_argument("--truth", required=True)
    args = parser.parse_args()
    sessions = load_sessions(Path(args.sessions))
    tun_fd = setup_tun(args.tun, [f"{s.ue_ip}/32" for s in sessions.sessions], args.dn_route)
    asyncio.run(run(args, sessions, tun_fd))


if __name__ == "__main__":
    main()
