"""PFCP session signalling and captures built by hand, as an Open5GS SMF
and UPF exchange them: an establishment whose UPF chooses its N3 F-TEID
(said in the Created PDR), then the modification giving the gNB's downlink
TEID and address."""

from __future__ import annotations

from pathlib import Path

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from sauron.pfcp import build, ies
from sauron.pfcp import messages as m
from sauron.pfcp.wire import PFCP_PORT

SMF, UPF_N4 = "10.10.4.1", "10.10.4.7"
UPF_N3, GNB = "10.10.3.7", "10.10.3.100"
CP_SEID, UP_SEID = 0x11, 0x22


def pfcp(src: str, dst: str, payload: bytes) -> bytes:
    return bytes(
        Ether() / IP(src=src, dst=dst) / UDP(sport=PFCP_PORT, dport=PFCP_PORT) / Raw(payload)
    )


def open5gs_session(
    snssai: tuple[int, int | None],
    dnn: str,
    ue: str,
    upf_teid: int,
    gnb_teid: int,
    qfi: int = 1,
) -> list[bytes]:
    """Establishment and modification, each answered."""
    request = build.message(
        m.SESSION_ESTABLISHMENT_REQUEST,
        0,
        1,
        build.node_id(SMF),
        build.f_seid(CP_SEID, SMF),
        build.create_pdr(1, ies.INTERFACE_ACCESS, choose=True, ue=ue, qfi=qfi, far_id=1),
        build.create_pdr(2, ies.INTERFACE_CORE, ue=ue, far_id=2),
        build.create_far(1, ies.INTERFACE_CORE),
        build.create_far(2, ies.INTERFACE_ACCESS),
        build.ie(ies.APN_DNN, build.dns_labels(dnn)),
        build.snssai(*snssai),
    )
    response = build.message(
        m.SESSION_ESTABLISHMENT_RESPONSE,
        CP_SEID,
        1,
        build.node_id(UPF_N4),
        build.cause(),
        build.f_seid(UP_SEID, UPF_N4),
        build.created_pdr(1, upf_teid, UPF_N3),
    )
    modify = build.message(
        m.SESSION_MODIFICATION_REQUEST,
        UP_SEID,
        2,
        build.create_far(2, ies.INTERFACE_ACCESS, gnb_teid, GNB, update=True),
    )
    modified = build.message(m.SESSION_MODIFICATION_RESPONSE, CP_SEID, 2, build.cause())
    return [
        pfcp(SMF, UPF_N4, request),
        pfcp(UPF_N4, SMF, response),
        pfcp(SMF, UPF_N4, modify),
        pfcp(UPF_N4, SMF, modified),
    ]


def write_capture(path: Path, frames: list[bytes], step_s: float = 0.001) -> Path:
    """A pcap of the frames, `step_s` apart from 1 700 000 000 s."""
    packets = []
    for i, frame in enumerate(frames):
        packet = Ether(frame)
        packet.time = 1_700_000_000 + i * step_s
        packets.append(packet)
    wrpcap(str(path), packets)
    return path
