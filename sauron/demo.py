"""`sauron demo`: the agent on a UPF's N3 and N6 interfaces in namespaces it
builds, with a gNB sending uplink GTP-U and a data network sending downlink
IP for the three slices of the default catalog, and a live per-slice table.

Until the full testbed (reference UPF, UE flows) exists, traffic on each side
comes from prebuilt frames sent with AF_PACKET; the counts are the kernel's.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from sauron.bpf import layout
from sauron.bpf.loader import DataPlane
from sauron.bpf.maps import active_per_slice, read_counters
from sauron.catalog import Catalog, load_catalog
from sauron.config import InterfaceConfig
from sauron.gtpu_frames import gtpu_frame
from sauron.interfaces import attach_interfaces
from sauron.netns import Topology, inside
from sauron.rules import program_catalog

GNB_MAC, UPF_N3_MAC = "02:00:00:00:03:01", "02:00:00:00:03:02"
DN_MAC, UPF_N6_MAC = "02:00:00:00:06:01", "02:00:00:00:06:02"


@dataclass(frozen=True)
class SliceLoad:
    """What the demo sends for one slice, per second."""

    slice_name: str
    ues: int
    ul_pps: int
    dl_pps: int
    payload: int
    qfi: int


DEMO_LOAD = (
    SliceLoad("embb", ues=4, ul_pps=400, dl_pps=1600, payload=1200, qfi=9),
    SliceLoad("urllc", ues=8, ul_pps=500, dl_pps=500, payload=64, qfi=1),
    SliceLoad("mmtc", ues=200, ul_pps=200, dl_pps=50, payload=40, qfi=5),
)


def _ue_address(catalog: Catalog, slice_name: str, index: int) -> str:
    spec = catalog.get(slice_name)
    if spec is None:
        raise ValueError(f"the catalog has no slice {slice_name!r}")
    net = next(n for n in spec.spec.ue_subnets if n.version == 4)
    return str(net.network_address + 1 + index)


def _teid(catalog: Catalog, slice_name: str, index: int) -> int:
    spec = catalog.get(slice_name)
    assert spec is not None
    first = spec.spec.teid_ranges[0].first if spec.spec.teid_ranges else 0x1000 * spec.id
    return first + index


def build_frames(catalog: Catalog, load: SliceLoad) -> tuple[list[bytes], list[bytes]]:
    uplink, downlink = [], []
    for i in range(load.ues):
        ue = _ue_address(catalog, load.slice_name, i)
        inner_ul = (
            IP(src=ue, dst="198.51.100.2")
            / UDP(sport=40000 + i, dport=9000)
            / Raw(bytes(load.payload))
        )
        uplink.append(
            gtpu_frame(
                inner_ul,
                teid=_teid(catalog, load.slice_name, i),
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


class PacedSender(threading.Thread):
    """Sends frames round-robin at a fixed rate until stopped."""

    def __init__(
        self, sock: socket.socket, frames: list[bytes], pps: int, stop: threading.Event
    ) -> None:
        super().__init__(daemon=True)
        self.sock, self.frames, self.pps, self.stop = sock, frames, pps, stop
        self.sent = 0

    def run(self) -> None:
        started = time.monotonic()
        while not self.stop.is_set():
            due = int((time.monotonic() - started) * self.pps)
            while self.sent < due:
                self.sock.send(self.frames[self.sent % len(self.frames)])
                self.sent += 1
            time.sleep(0.005)


def _packet_socket(ns: str, ifname: str) -> socket.socket:
    with inside(ns):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        sock.bind((ifname, 0))
    return sock


def format_table(
    catalog: Catalog,
    rates: dict[str, dict[str, tuple[float, float]]],
    active_teids: dict[int, int],
    active_ues: dict[int, int],
) -> str:
    """Per slice: rates on N3 (uplink) and N6 (downlink), and the TEIDs and
    UE addresses that carried traffic in the interval."""
    lines = [
        f"{'slice':<8}{'S-NSSAI':<11}{'UL pkt/s':>10}{'UL Mbit/s':>11}{'DL pkt/s':>10}"
        f"{'DL Mbit/s':>11}{'TEIDs':>7}{'UEs':>6}"
    ]
    for s in catalog.slices:
        ul = rates.get(s.name, {}).get("uplink", (0.0, 0.0))
        dl = rates.get(s.name, {}).get("downlink", (0.0, 0.0))
        lines.append(
            f"{s.name:<8}{s.spec.snssai!s:<11}{ul[0]:>10.0f}{ul[1]:>11.2f}{dl[0]:>10.0f}"
            f"{dl[1]:>11.2f}{active_teids.get(s.id, 0):>7}{active_ues.get(s.id, 0):>6}"
        )
    return "\n".join(lines)


def run_demo(
    duration: float, catalog: Catalog | None = None, out: Callable[[str], None] = print
) -> dict[str, dict[str, int]]:
    """Runs the demo; returns the final per-slice packet counts."""
    catalog = catalog or load_catalog()
    stop = threading.Event()
    dp = DataPlane()
    with dp, Topology() as topo:
        program_catalog(dp, catalog)
        gnb, upf, dn = topo.namespace("gnb"), topo.namespace("upf"), topo.namespace("dn")
        topo.veth(gnb, "n3", "192.0.2.1/24", upf, "n3", "192.0.2.2/24", GNB_MAC, UPF_N3_MAC)
        topo.veth(upf, "n6", "198.51.100.1/24", dn, "eth0", "198.51.100.2/24", UPF_N6_MAC, DN_MAC)
        attach_interfaces(
            dp,
            [
                InterfaceConfig(name="n3", role="n3", netns=upf),
                InterfaceConfig(name="n6", role="n6", netns=upf),
            ],
            topo,
        )
        out(
            f"namespaces {gnb}, {upf}, {dn}; programs on {upf}: n3 (XDP + TC egress), n6 (XDP + TC egress)"
        )
        senders = []
        for load in DEMO_LOAD:
            ul, dl = build_frames(catalog, load)
            senders.append(PacedSender(_packet_socket(gnb, "n3"), ul, load.ul_pps, stop))
            senders.append(PacedSender(_packet_socket(dn, "eth0"), dl, load.dl_pps, stop))
        for sender in senders:
            sender.start()
        previous = read_counters(dp)
        prev_t = time.monotonic()
        end = prev_t + duration
        try:
            while time.monotonic() < end:
                time.sleep(min(1.0, max(0.0, end - time.monotonic())))
                now = read_counters(dp)
                t = time.monotonic()
                rates: dict[str, dict[str, tuple[float, float]]] = {}
                for s in catalog.slices:
                    for point, dname in (
                        (layout.POINT_N3_INGRESS, "uplink"),
                        (layout.POINT_N6_INGRESS, "downlink"),
                    ):
                        d = layout.DIR_UPLINK if dname == "uplink" else layout.DIR_DOWNLINK
                        cur, old = now.slice(point, s.id, d), previous.slice(point, s.id, d)
                        dt = max(t - prev_t, 1e-6)
                        rates.setdefault(s.name, {})[dname] = (
                            (cur.packets - old.packets) / dt,
                            (cur.bytes - old.bytes) * 8 / dt / 1e6,
                        )
                active_teids = active_per_slice(previous.teids, now.teids)
                active_ues = active_per_slice(previous.ues, now.ues)
                out(format_table(catalog, rates, active_teids, active_ues) + "\n")
                previous, prev_t = now, t
        except KeyboardInterrupt:
            out("interrupted")
        finally:
            stop.set()
            for sender in senders:
                sender.join(timeout=2)
        final = read_counters(dp)
        return {
            s.name: {
                "uplink": int(
                    final.slice(layout.POINT_N3_INGRESS, s.id, layout.DIR_UPLINK).packets
                ),
                "downlink": int(
                    final.slice(layout.POINT_N6_INGRESS, s.id, layout.DIR_DOWNLINK).packets
                ),
            }
            for s in catalog.slices
        }
