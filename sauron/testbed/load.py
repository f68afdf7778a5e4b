"""Load for the agent: G-PDUs of every session built once (struct packing,
no scapy), then sent from the gNB's N3 address at a fixed rate in small
paced batches. What was sent, per slice and TEID, is the ground truth."""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass

from sauron.host.netns import inside
from sauron.testbed import codec
from sauron.testbed.bed import N3_GNB, N3_UPF, N6_DN, UDP_ECHO_PORT, Testbed
from sauron.testbed.truth import Tally

BATCH = 64


def _udp_ipv4(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    """An inner IPv4/UDP packet (checksums left zero: nothing verifies them
    before the UPF)."""
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    return (
        struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(udp),
            0,
            0,
            64,
            17,
            0,
            socket.inet_aton(src),
            socket.inet_aton(dst),
        )
        + udp
    )


@dataclass
class LoadResult:
    truth: Tally
    sent: int
    seconds: float

    @property
    def pps(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


def blast(bed: Testbed, pps: float, seconds: float, payload: int = 64) -> LoadResult:
    """Uplink G-PDUs for every session of the testbed, round-robin, at `pps`
    for `seconds` (as fast as the sender can when it cannot keep up)."""
    frames: list[tuple[bytes, str, int]] = []
    for s in bed.sessions.sessions:
        inner = _udp_ipv4(str(s.ue_ip), N6_DN, 40000, UDP_ECHO_PORT, bytes(payload))
        gtp = codec.encapsulate(s.ul_teid, inner, qfi=s.qfi, uplink=True)
        frames.append((gtp, s.slice, s.ul_teid))
    with inside(bed.gnb):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((N3_GNB, 0))
    sock.connect((N3_UPF, codec.GTPU_PORT))
    truth = Tally()
    sent = 0
    started = time.monotonic()
    total = int(pps * seconds)
    try:
        while sent < total:
            due = min(total, int((time.monotonic() - started) * pps) + BATCH)
            while sent < due:
                gtp, slice_name, teid = frames[sent % len(frames)]
                sock.send(gtp)
                truth.add(slice_name, teid, "ul_sent", codec.frame_bytes(len(gtp)))
                sent += 1
            ahead = sent / pps - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
    finally:
        sock.close()
    return LoadResult(truth=truth, sent=sent, seconds=time.monotonic() - started)
