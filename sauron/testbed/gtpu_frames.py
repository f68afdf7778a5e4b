"""Building GTP-U frames (scapy) for the demo, the testbed and the tests:
never on a hot path; senders send the prebuilt bytes."""

from __future__ import annotations

from scapy.contrib.gtp import GTP_U_Header, GTPPDUSessionContainer
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet

GTPU_PORT = 2152


def gtpu_frame(
    inner: Packet,
    teid: int,
    qfi: int | None = None,
    uplink: bool = True,
    src_mac: str = "02:00:00:00:00:01",
    dst_mac: str = "02:00:00:00:00:02",
    outer_src: str = "192.0.2.1",
    outer_dst: str = "192.0.2.2",
    seq: int | None = None,
) -> bytes:
    """An Ethernet/IPv4/UDP 2152/GTP-U G-PDU around `inner`, with a PDU
    Session Container when a QFI is given."""
    gtp = GTP_U_Header(teid=teid, gtp_type=255)
    if seq is not None:
        gtp.S = 1
        gtp.seq = seq
    payload: Packet
    if qfi is not None:
        gtp.E = 1
        gtp.next_ex = 0x85
        payload = gtp / GTPPDUSessionContainer(type=1 if uplink else 0, QFI=qfi) / inner
    else:
        payload = gtp / inner
    frame = (
        Ether(src=src_mac, dst=dst_mac)
        / IP(src=outer_src, dst=outer_dst)
        / UDP(sport=GTPU_PORT, dport=GTPU_PORT)
        / payload
    )
    return bytes(frame)
