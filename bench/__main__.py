"""`make bench`: added cost per packet of each program for each packet kind,
from BPF_PROG_TEST_RUN with many repeats, minus an empty program of the same
type measured in the same run (interleaved, median of several rounds)."""

from __future__ import annotations

import json
import platform
import statistics
from pathlib import Path

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from sauron.bpf import layout, libbpf
from sauron.bpf.loader import BpfObject, DataPlane
from sauron.catalog import load_catalog
from sauron.gtpu_frames import gtpu_frame
from sauron.rules import program_catalog

REPEAT = 200_000
ROUNDS = 7


def frames() -> dict[str, tuple[int, str, bytes]]:
    ul = gtpu_frame(
        IP(src="10.45.0.7", dst="198.51.100.2") / UDP(sport=40000, dport=9000) / Raw(bytes(64)),
        teid=0x10001,
        qfi=9,
        uplink=True,
    )
    dl_ip = bytes(
        Ether()
        / IP(src="198.51.100.2", dst="10.45.0.7")
        / UDP(sport=9000, dport=40000)
        / Raw(bytes(64))
    )
    echo = bytes(
        Ether()
        / IP(src="192.0.2.1", dst="192.0.2.2")
        / UDP(sport=2152, dport=2152)
        / Raw(bytes([0x32, 1, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0]))
    )
    malformed = (
        ul[: 14 + 20 + 8 + 8 + 2] + b"\x00" + ul[14 + 20 + 8 + 8 + 3 :]
    )  # zero-length extension
    return {
        "xdp_n3_ul_gpdu": (layout.POINT_N3_INGRESS, "xdp", ul),
        "xdp_n3_echo": (layout.POINT_N3_INGRESS, "xdp", echo),
        "xdp_n3_malformed": (layout.POINT_N3_INGRESS, "xdp", malformed),
        "xdp_n6_dl_ip": (layout.POINT_N6_INGRESS, "xdp", dl_ip),
        "tc_n3_dl_gpdu": (layout.POINT_N3_EGRESS, "tc", ul),
        "tc_n6_ul_ip": (layout.POINT_N6_EGRESS, "tc", dl_ip),
    }


def main() -> None:
    dp = DataPlane()
    program_catalog(dp, load_catalog())
    empty = BpfObject(["empty_xdp.c"])
    baseline = {
        "xdp": empty.function("empty_xdp", "xdp").fd,
        "tc": empty.function("empty_tc", "tc").fd,
    }
    results = []
    print(f"{'name':<32}{'added ns':>10}{'spread':>9}{'program ns':>12}{'empty ns':>10}")
    for name, (point, hook, frame) in frames().items():
        fd = dp.program_fd(point)
        added, totals, empties = [], [], []
        for _ in range(ROUNDS):
            e = libbpf.test_run(baseline[hook], frame, REPEAT).duration_ns
            t = libbpf.test_run(fd, frame, REPEAT).duration_ns
            added.append(t - e)
            totals.append(t)
            empties.append(e)
        med = statistics.median(added)
        spread = (max(added) - min(added)) / 2
        print(
            f"{name + '_added_ns':<32}{med:>10.0f}{spread:>9.0f}{statistics.median(totals):>12.0f}{statistics.median(empties):>10.0f}"
        )
        results.append(
            {
                "name": f"{name}_added_ns",
                "value": med,
                "unit": "ns",
                "spread": spread,
                "goal": 60 if name == "xdp_n3_ul_gpdu" else None,
                "machine": f"{platform.node()} {platform.machine()} {platform.release()}",
            }
        )
    out = Path(__file__).resolve().parent / "results.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten {out}")
    empty.close()
    dp.close()


if __name__ == "__main__":
    main()
