"""The gNB with its UEs: a TUN device (`uesimtun0`, as UERANSIM names it)
holding every UE address, so that ordinary kernel sockets bound to a UE
address send and receive through the tunnel; uplink G-PDUs with a UL PDU
Session Container, optional sequence numbers, GTP-U echo towards the UPF,
and an injected radio-side uplink loss per slice.

Run inside the gNB namespace: python -m sauron.testbed.gnb ARGS
"""

from __future__ import annotations

import argparse
import asyncio
import random
from pathlib import Path

from sauron.testbed import codec
from sauron.testbed.node import drain_tun, serve_until_terminated, write_tun
from sauron.testbed.sessions import SessionsFile, load_sessions
from sauron.testbed.truth import Tally
from sauron.testbed.tun import open_tun


class Gnb(asyncio.DatagramProtocol):
    def __init__(self, sessions: SessionsFile, upf: str, tun_fd: int) -> None:
        self.by_ue = {s.ue_ip.packed: s for s in sessions.sessions}
        self.by_dl_teid = {s.dl_teid: s for s in sessions.sessions}
        self.radio_loss = sessions.uplink_radio_loss
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
        assert self.transport is not None
        self.transport.sendto(gtp, self.upf)
        self.truth.add(session.slice, session.ul_teid, "ul_sent", codec.frame_bytes(len(gtp)))

    # downlink: N3 -> UE
    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        msg = codec.decapsulate(data)
        if msg is None:
            self.truth.note("n3_not_gtpu")
            return
        if msg.msg_type == codec.ECHO_RESPONSE:
            self.truth.note("echo_responses_received")
            return
        if msg.msg_type != codec.G_PDU:
            self.truth.note(f"n3_message_{msg.msg_type}")
            return
        session = self.by_dl_teid.get(msg.teid)
        if session is None:
            self.truth.note("dl_unknown_teid")
            return
        self.truth.add(session.slice, session.dl_teid, "dl_received", codec.frame_bytes(len(data)))
        if write_tun(self.tun_fd, msg.payload):
            self.truth.add(session.slice, session.dl_teid, "dl_delivered", len(msg.payload))

    def send_echo(self) -> None:
        assert self.transport is not None
        self.transport.sendto(
            codec.encapsulate(0, b"", seq=self.echo_seq, msg_type=codec.ECHO_REQUEST), self.upf
        )
        self.echo_seq = (self.echo_seq + 1) & 0xFFFF
        self.truth.note("echo_requests_sent")


def setup_tun(args: argparse.Namespace, sessions: SessionsFile) -> int:
    """Opens and addresses the TUN device (before the event loop runs:
    pyroute2's synchronous API runs its own)."""
    tun_fd = open_tun(args.tun)
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        idx = ipr.link_lookup(ifname=args.tun)[0]
        for s in sessions.sessions:
            ipr.addr("add", index=idx, address=str(s.ue_ip), prefixlen=32)
        ipr.link("set", index=idx, state="up", mtu=1400)
        for dn in args.dn_route:
            net, _, plen = dn.partition("/")
            ipr.route("add", dst=net, dst_len=int(plen or 32), oif=idx)
    return tun_fd


async def run(args: argparse.Namespace, sessions: SessionsFile, tun_fd: int) -> None:
    loop = asyncio.get_running_loop()
    transport, gnb = await loop.create_datagram_endpoint(
        lambda: Gnb(sessions, args.upf, tun_fd), local_addr=(args.n3, codec.GTPU_PORT)
    )
    loop.add_reader(tun_fd, drain_tun, tun_fd, gnb.tun_packet)
    echo: asyncio.TimerHandle | None = None

    def tick() -> None:
        nonlocal echo
        gnb.send_echo()
        echo = loop.call_later(args.echo_interval, tick)

    if args.echo_interval > 0:
        tick()

    def stop() -> None:
        if echo is not None:
            echo.cancel()
        loop.remove_reader(tun_fd)
        transport.close()
        gnb.truth.write(Path(args.truth), {"node": "gnb"})

    await serve_until_terminated(stop)


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
    asyncio.run(run(args, sessions, setup_tun(args, sessions)))


if __name__ == "__main__":
    main()
