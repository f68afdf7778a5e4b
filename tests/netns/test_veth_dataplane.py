"""The programs attached to a UPF's N3 and N6 veths in namespaces, real
frames sent through them: the map readers return exactly what was sent per
slice, direction, QFI, TEID and UE, and the receiving side gets every frame
unchanged; on every ingress hook (TC, generic and native XDP) alike."""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from sauron.abi import layout
from sauron.agent.config import AgentConfig
from sauron.agent.interfaces import attach_interfaces
from sauron.bpf.links import Links
from sauron.bpf.loader import DataPlane
from sauron.bpf.maps import read_counters
from sauron.catalog import Catalog
from sauron.host.netns import Topology, inside
from sauron.testbed.gtpu_frames import gtpu_frame

pytestmark = [pytest.mark.kernel, pytest.mark.netns]

GNB_MAC, UPF_N3_MAC = "02:00:00:00:03:01", "02:00:00:00:03:02"
DN_MAC, UPF_N6_MAC = "02:00:00:00:06:01", "02:00:00:00:06:02"


@dataclass(frozen=True)
class SliceLoad:
    slice_name: str
    ues: int
    payload: int
    qfi: int


def build_frames(catalog: Catalog, load: SliceLoad) -> tuple[list[bytes], list[bytes]]:
    """Uplink GTP-U frames (one per UE, from its TEID and address) and the
    matching downlink IP frames, built once."""
    spec = catalog.get(load.slice_name)
    assert spec is not None
    pool = next(n for n in spec.spec.ue_subnets if n.version == 4)
    uplink, downlink = [], []
    for i in range(load.ues):
        ue = str(pool.network_address + 1 + i)
        inner = (
            IP(src=ue, dst="198.51.100.2")
            / UDP(sport=40000 + i, dport=9000)
            / Raw(bytes(load.payload))
        )
        uplink.append(
            gtpu_frame(
                inner,
                teid=spec.spec.teid_ranges[0].first + i,
                qfi=load.qfi,
                uplink=True,
                src_mac=GNB_MAC,
                dst_mac=UPF_N3_MAC,
                outer_src="192.0.2.1",
                outer_dst="192.0.2.2",
            )
        )
        downlink.append(
            bytes(
                Ether(src=DN_MAC, dst=UPF_N6_MAC)
                / IP(src="198.51.100.2", dst=ue)
                / UDP(sport=9000, dport=40000 + i)
                / Raw(bytes(load.payload))
            )
        )
    return uplink, downlink


LOADS = (
    SliceLoad("embb", ues=3, payload=1000, qfi=9),
    SliceLoad("urllc", ues=5, payload=60, qfi=1),
    SliceLoad("mmtc", ues=17, payload=30, qfi=5),
)
SO_RCVBUFFORCE = 33  # asm-generic/socket.h; root may exceed rmem_max
ROUNDS = {"embb": 40, "urllc": 20, "mmtc": 3}


def _sock(ns: str, ifname: str, proto: int = 3) -> socket.socket:
    with inside(ns):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(proto))
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 32 << 20)
        s.bind((ifname, 0))
    return s


def _receive(sock: socket.socket, wanted: set[bytes], expected: int) -> int:
    got = 0
    sock.settimeout(0.3)
    deadline = time.monotonic() + 5
    while got < expected and time.monotonic() < deadline:
        try:
            data = sock.recv(4096)
        except TimeoutError:
            continue
        if data in wanted:
            got += 1
    return got


@pytest.mark.parametrize("ingress", ["tc", "xdp-generic", "xdp-native"])
def test_three_slices_exact_counts(
    dataplane: DataPlane, catalog: Catalog, topology: Topology, links: Links, ingress: str
) -> None:
    gnb, upf, dn = topology.namespace("gnb"), topology.namespace("upf"), topology.namespace("dn")
    topology.veth(gnb, "n3", "192.0.2.1/24", upf, "n3", "192.0.2.2/24", GNB_MAC, UPF_N3_MAC)
    topology.veth(upf, "n6", "198.51.100.1/24", dn, "eth0", "198.51.100.2/24", UPF_N6_MAC, DN_MAC)
    config = AgentConfig(
        interfaces=[
            {"name": "n3", "role": "n3", "netns": upf, "ingress": ingress},
            {"name": "n6", "role": "n6", "netns": upf, "ingress": ingress},
        ]
    )
    attach_interfaces(dataplane, config.interfaces, links)
    rx_n3, rx_n6 = _sock(upf, "n3"), _sock(upf, "n6")
    tx_gnb, tx_dn = _sock(gnb, "n3"), _sock(dn, "eth0")

    expected: dict[str, tuple[int, int, int, int]] = {}
    per_teid: dict[int, tuple[int, int]] = {}
    per_ue: dict[bytes, tuple[int, int]] = {}
    sent_ul: set[bytes] = set()
    sent_dl: set[bytes] = set()
    total_ul = total_dl = 0
    for load in LOADS:
        ul, dl = build_frames(catalog, load)
        rounds = ROUNDS[load.slice_name]
        for _ in range(rounds):
            for frame in ul:
                tx_gnb.send(frame)
            for frame in dl:
                tx_dn.send(frame)
            # veth hands XDP frames through a 256-slot ring: send in paced rounds
            time.sleep(0.002)
        sent_ul.update(ul)
        sent_dl.update(dl)
        spec = catalog.get(load.slice_name).spec
        for i, (up, down) in enumerate(zip(ul, dl, strict=True)):
            per_teid[spec.teid_ranges[0].first + i] = (rounds, rounds * len(up))
            ue = next(n for n in spec.ue_subnets if n.version == 4).network_address + 1 + i
            per_ue[ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + ue.packed).packed] = (
                rounds,
                rounds * len(down),
            )
        total_ul += rounds * len(ul)
        total_dl += rounds * len(dl)
        expected[load.slice_name] = (
            rounds * len(ul),
            rounds * sum(map(len, ul)),
            rounds * len(dl),
            rounds * sum(map(len, dl)),
        )

    assert _receive(rx_n3, sent_ul, total_ul) == total_ul, "every uplink frame arrives unchanged"
    assert _receive(rx_n6, sent_dl, total_dl) == total_dl, "every downlink frame arrives unchanged"

    counters = read_counters(dataplane)
    for name, (ul_pkts, ul_bytes, dl_pkts, dl_bytes) in expected.items():
        sid = catalog.get(name).id
        ul_st = counters.slice(layout.POINT_N3_INGRESS, sid, layout.DIR_UPLINK)
        dl_st = counters.slice(layout.POINT_N6_INGRESS, sid, layout.DIR_DOWNLINK)
        assert (ul_st.packets, ul_st.bytes) == (ul_pkts, ul_bytes), name
        assert (dl_st.packets, dl_st.bytes) == (dl_pkts, dl_bytes), name
        assert ul_st.malformed == 0 and ul_st.msg[0] == ul_pkts
        load = next(ld for ld in LOADS if ld.slice_name == name)
        qfi = counters.qfi(layout.POINT_N3_INGRESS, sid, load.qfi, layout.DIR_UPLINK)
        assert (qfi.packets, qfi.bytes) == (ul_pkts, ul_bytes), name
    # nothing of ours fell into "unclassified" (the kernel's own IPv6 ND/MLD may)
    assert counters.slice(layout.POINT_N3_INGRESS, 0, layout.DIR_UPLINK).msg[0] == 0
    # per TEID (uplink on N3) and per UE (downlink on N6): each session's own
    teids = {
        counters.teid_of(t): (t.packets[layout.DIR_UPLINK], t.bytes[layout.DIR_UPLINK])
        for t in counters.teids
    }
    assert teids == per_teid
    ues = {
        u.key: (u.packets[layout.DIR_DOWNLINK], u.bytes[layout.DIR_DOWNLINK])
        for u in counters.ues
        if u.key in per_ue
    }
    assert ues == per_ue
    for sock in (rx_n3, rx_n6, tx_gnb, tx_dn):
        sock.close()
