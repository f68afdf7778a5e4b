"""A gNB namespace and a UPF namespace joined by a veth pair: the UPF's end
is its N3 interface. The frames are uplink G-PDUs with a PDU Session
Container, spread over TEIDs of the three default slices, addressed so the
UPF's stack takes them in (its MAC, its N3 address, UDP 2152)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from scapy.layers.inet import IP, UDP
from scapy.packet import Raw

from sauron.host.netns import Topology, inside
from sauron.testbed.gtpu_frames import gtpu_frame

GNB_MAC, UPF_MAC = "02:00:00:00:0a:01", "02:00:00:00:0a:02"
GNB_ADDR, UPF_ADDR = "192.0.2.1", "192.0.2.2"
N3 = "n3"
#: (slice name, first TEID of its range, UE pool) as in slices/default.yaml
SLICES = (("embb", 0x10000, "10.45"), ("urllc", 0x20000, "10.46"), ("mmtc", 0x30000, "10.47"))


@dataclass
class N3Link:
    topology: Topology
    gnb: str
    upf: str


@contextmanager
def n3_link() -> Iterator[N3Link]:
    with Topology() as topo:
        gnb, upf = topo.namespace("gnb"), topo.namespace("upf")
        topo.veth(gnb, "gnb0", f"{GNB_ADDR}/24", upf, N3, f"{UPF_ADDR}/24", GNB_MAC, UPF_MAC)
        yield N3Link(topo, gnb, upf)


def uplink_frames(sessions_per_slice: int, payload: int = 64) -> list[tuple[str, int, bytes]]:
    """(slice, TEID, frame) for each session, slices interleaved."""
    out = []
    for n in range(sessions_per_slice):
        for name, first_teid, pool in SLICES:
            inner = (
                IP(src=f"{pool}.{n // 250}.{n % 250 + 1}", dst="198.51.100.9")
                / UDP(sport=40000, dport=5000)
                / Raw(bytes(payload))
            )
            frame = gtpu_frame(
                inner,
                first_teid + n,
                qfi=9,
                src_mac=GNB_MAC,
                dst_mac=UPF_MAC,
                outer_src=GNB_ADDR,
                outer_dst=UPF_ADDR,
            )
            out.append((name, first_teid + n, frame))
    return out


def udp_delivered(ns: str) -> int:
    """Datagrams the namespace's UDP layer took in (to a socket or not)."""
    with inside(ns):
        lines = Path("/proc/thread-self/net/snmp").read_text().splitlines()
    header, values = (line.split()[1:] for line in lines if line.startswith("Udp:"))
    row = dict(zip(header, (int(v) for v in values), strict=True))
    return row["InDatagrams"] + row["NoPorts"] + row["InErrors"]
