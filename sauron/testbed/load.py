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


def _header_checksum(header: bytes) -> int:
    """The IPv4 header checksum (RFC 791): the ones' complement of the
    ones' complement sum of its 16-bit words."""
    total: int = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _udp_ipv4(
    src: str, dst: str, sport: int, dport: int, payload: bytes, checksum: bool = False
) -> bytes:
    """An inner IPv4/UDP packet. Its checksums are left zero unless
    `checksum`: nothing verifies them before the UPF, but the UPF's kernel
    drops a packet whose IP header checksum is wrong once the UPF writes it
    to its TUN device, so such a packet never leaves by N6 (a zero UDP
    checksum is allowed)."""
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    fields = [0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst)]
    if checksum:
        fields[7] = _header_checksum(struct.pack("!BBHHHBBH4s4s", *fields))
    return struct.pack("!BBHHHBBH4s4s", *fields) + udp


@dataclass
class LoadResult:
    truth: Tally
    sent: int
    seconds: float

    @property
    def pps(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


def blast(
    bed: Testbed,
    pps: float,
    seconds: float,
    payload: int = 64,
    slices: frozenset[str] | None = None,
    port: int = UDP_ECHO_PORT,
    numbered: bool = False,
    forwarded: bool = False,
) -> LoadResult:
    """Uplink G-PDUs for every session of the testbed (of `slices` only,
    when given), round-robin, at `pps` for `seconds` (as fast as the sender
    can when it cannot keep up), to the DN's UDP `port` (the echo: each
    comes back downlink; another port: uplink only). `numbered`: each
    payload starts with the datagram's number, so that no two are alike
    (the agent's transit stamps then follow each one: a lost one counts).
    `forwarded`: the inner packets are whole (their IP header checksum
    right), so the UPF's kernel forwards them out of N6; by default the load
    is N3's alone and ends at the UPF's TUN device."""
    served = [s for s in bed.sessions.sessions if slices is None or s.slice in slices]
    total = int(pps * seconds)
    frames: list[tuple[bytes, str, int]] = []
    for n in range(total if numbered else len(served)):
        s = served[n % len(served)]
        body = n.to_bytes(4, "big") + bytes(payload - 4) if numbered else bytes(payload)
        inner = _udp_ipv4(str(s.ue_ip), N6_DN, 40000, port, body, checksum=forwarded)
        gtp = codec.encapsulate(s.ul_teid, inner, qfi=s.qfi, uplink=True)
        frames.append((gtp, s.slice, s.ul_teid))
    with inside(bed.gnb):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((N3_GNB, 0))
    sock.connect((N3_UPF, codec.GTPU_PORT))
    truth = Tally()
    sent = 0
    started = time.monotonic()
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
