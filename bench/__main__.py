"""`make bench`: added cost per packet of each program for each packet kind,
from BPF_PROG_TEST_RUN with many repeats, minus an empty program of the same
type measured in the same run (interleaved, median of several rounds).

Each kind runs with measuring off, then on with the packet sampled (a
transit stamp taken at ingress, looked up at egress, plus the tail call
into the measurement program) and on with the packet not sampled. A repeat
runs the same frame again: after the first run a stamp exists (the insert
fails the same way) and a match finds nothing (the lookup misses), so the
figures are of the map operations, not of their success."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from sauron.bpf import layout, libbpf
from sauron.bpf.loader import BpfObject, DataPlane
from sauron.bpf.measurements import MeasureSettings, apply_settings
from sauron.catalog import load_catalog
from sauron.gtpu_frames import gtpu_frame
from sauron.rules import program_catalog

REPEAT = 200_000
ROUNDS = 15
PROCESSES = 3


def frames() -> dict[str, tuple[int, str, bytes]]:
    ul = gtpu_frame(
        IP(src="10.45.0.7", dst="198.51.100.2") / UDP(sport=40000, dport=9000) / Raw(bytes(64)),
        teid=0x10001,
        qfi=9,
        uplink=True,
    )
    ul_ip = bytes(
        Ether()
        / IP(src="10.45.0.7", dst="198.51.100.2")
        / UDP(sport=40000, dport=9000)
        / Raw(bytes(64))
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
        "tc_n6_ul_ip": (layout.POINT_N6_EGRESS, "tc", ul_ip),
    }


#: measuring off, on with every packet sampled, on with (almost) none
MODES: dict[str, MeasureSettings] = {
    "": MeasureSettings.off(),
    "+measure_sampled": MeasureSettings(transit_one_in=((1, 1), (0, 1))),
    "+measure_unsampled": MeasureSettings(transit_one_in=((1, 65536), (0, 65536))),
}
MEASURED_KINDS = ("xdp_n3_ul_gpdu", "tc_n6_ul_ip", "xdp_n6_dl_ip", "tc_n3_dl_gpdu")


def measure() -> dict[str, list[float]]:
    """One process: every packet kind, ROUNDS interleaved rounds of program
    and empty baseline; returns the added ns of each round."""
    # a test run executes on the calling CPU: stay on one, away from CPU 0's interrupts
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[-1]})
    dp = DataPlane()
    program_catalog(dp, load_catalog())
    empty = BpfObject(["empty_xdp.c"])
    baseline = {
        "xdp": empty.function("empty_xdp", "xdp").fd,
        "tc": empty.function("empty_tc", "tc").fd,
    }
    added: dict[str, list[float]] = {}
    cases = [
        (name + mode, settings, case)
        for mode, settings in MODES.items()
        for name, case in frames().items()
        if not mode or name in MEASURED_KINDS
    ]
    for name, settings, (point, hook, frame) in cases:
        apply_settings(dp, settings)
        fd = dp.program_fd(point)
        rounds = []
        for _ in range(ROUNDS):
            e = libbpf.test_run(baseline[hook], frame, REPEAT).duration_ns
            t = libbpf.test_run(fd, frame, REPEAT).duration_ns
            rounds.append(t - e)
        rounds.append(
            -1.0
            * statistics.median(
                libbpf.test_run(baseline[hook], frame, REPEAT).duration_ns for _ in range(3)
            )
        )
        added[name] = rounds
    empty.close()
    dp.close()
    return added


def main() -> None:
    if sys.argv[1:] == ["--one-process"]:
        print(json.dumps(measure()))
        return
    # Figures move by tens of ns between processes on a VM (where the maps
    # land in memory); each process is one sample set, and all are pooled.
    per_process = []
    for _ in range(PROCESSES):
        out = subprocess.run(
            [sys.executable, "-m", "bench", "--one-process"],
            capture_output=True,
            text=True,
            check=True,
        )
        per_process.append(json.loads(out.stdout.strip().splitlines()[-1]))
    machine = f"{platform.node()} {platform.machine()} {platform.release()}, {os.cpu_count()} CPUs"
    print(f"{PROCESSES} processes x {ROUNDS} rounds x {REPEAT} runs; {machine}")
    print(f"{'name':<48}{'added ns':>10}{'spread':>9}{'process medians':>22}{'empty ns':>10}")
    results = []
    for name in per_process[0]:
        pooled = [v for p in per_process for v in p[name][:-1]]
        medians = [statistics.median(p[name][:-1]) for p in per_process]
        empty_ns = statistics.median(-p[name][-1] for p in per_process)
        q = statistics.quantiles(pooled, n=4)
        value, spread = statistics.median(pooled), (q[2] - q[0]) / 2
        shown = "/".join(f"{m:.0f}" for m in medians)
        print(f"{name + '_added_ns':<48}{value:>10.0f}{spread:>9.0f}{shown:>22}{empty_ns:>10.0f}")
        results.append(
            {
                "name": f"{name}_added_ns",
                "value": value,
                "unit": "ns",
                "spread": spread,
                "process_medians": medians,
                "empty_program_ns": empty_ns,
                "goal": 60 if name == "xdp_n3_ul_gpdu" else None,
                "machine": machine,
            }
        )
    out_path = Path(__file__).resolve().parent / "results.json"
    out_path.write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"\nwritten {out_path} (value: median of all rounds; spread: half the interquartile range)"
    )


if __name__ == "__main__":
    main()
