"""Added cost per packet of each program for each packet kind,
from BPF_PROG_TEST_RUN with many repeats, minus an empty program of the same
type measured in the same run (interleaved, median of several rounds).

Each kind runs with measuring off, then on with the packet sampled and on
with it not sampled, and the N3 kinds with the evidence tap on (their
slice diagnosed: the copy into the ring; another slice diagnosed: the
hand-over alone), and an eMBB uplink G-PDU with the security checks on
(its source vouched for, with or without peers listed; failing each check;
or a prefix protected). A repeat runs the
same frame again. Sampled at
ingress, the stamps expire after 1 ns: every run finds the last run's stamp
overdue in its slot, counts it lost and takes the slot, so the figure is of
a stamp really taken (the clock read, the compare-and-swap, the slot
written), not of a duplicate turned away. Sampled at egress, the first run
matches and frees the slot and the others find it free: the figure is of
the lookup. The clock read a stamp cannot do without is measured apart
(clock_read_ns)."""

from __future__ import annotations

import ipaddress
import json
import os
import statistics
import subprocess
import sys

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from bench.figures import Figure, figure
from sauron.abi import layout
from sauron.bpf import libbpf
from sauron.bpf.evidence import EvidenceTap
from sauron.bpf.loader import BpfObject, DataPlane
from sauron.bpf.measurements import MeasureSettings, apply_settings
from sauron.bpf.rules import program_catalog
from sauron.bpf.security import set_checks
from sauron.catalog import load_catalog
from sauron.testbed.gtpu_frames import gtpu_frame

REPEAT = 200_000
ROUNDS = 15
PROCESSES = 3


def frames() -> dict[str, tuple[int, str, bytes]]:
    inner_ul = (
        IP(src="10.45.0.7", dst="198.51.100.2") / UDP(sport=40000, dport=9000) / Raw(bytes(64))
    )
    inner_dl = (
        IP(src="198.51.100.2", dst="10.45.0.7") / UDP(sport=9000, dport=40000) / Raw(bytes(64))
    )
    ul = gtpu_frame(inner_ul, teid=0x10001, qfi=9, uplink=True)
    dl = gtpu_frame(inner_dl, teid=0x10001, qfi=9, uplink=False)
    ul_ip = bytes(Ether() / inner_ul)
    dl_ip = bytes(Ether() / inner_dl)
    echo = bytes(
        Ether()
        / IP(src="192.0.2.1", dst="192.0.2.2")
        / UDP(sport=2152, dport=2152)
        / Raw(bytes([0x32, 1, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0]))
    )
    # a zero-length extension header: walking it by its length cannot advance
    bad_gtpu = ul[: 14 + 20 + 8 + 8 + 2] + b"\x00" + ul[14 + 20 + 8 + 8 + 3 :]
    # an IPv4 header claiming 60 bytes in a 40-byte frame
    bad_ip = bytes(Ether()) + bytes([0x4F]) + dl_ip[15:40]
    return {
        "xdp_n3_ul_gpdu": (layout.POINT_N3_INGRESS, "xdp", ul),
        "xdp_n3_echo": (layout.POINT_N3_INGRESS, "xdp", echo),
        "xdp_n3_malformed": (layout.POINT_N3_INGRESS, "xdp", bad_gtpu),
        "xdp_n6_dl_ip": (layout.POINT_N6_INGRESS, "xdp", dl_ip),
        "xdp_n6_malformed": (layout.POINT_N6_INGRESS, "xdp", bad_ip),
        "tc_n3_dl_gpdu": (layout.POINT_N3_EGRESS, "tc", dl),
        "tc_n3_echo": (layout.POINT_N3_EGRESS, "tc", echo),
        "tc_n3_malformed": (layout.POINT_N3_EGRESS, "tc", bad_gtpu),
        "tc_n6_ul_ip": (layout.POINT_N6_EGRESS, "tc", ul_ip),
        "tc_n6_malformed": (layout.POINT_N6_EGRESS, "tc", bad_ip),
    }


#: measuring off, on with every packet sampled, on with (almost) none; with
#: the transit stamps' expiry (ns, 0: never) each mode runs under
MODES: dict[str, tuple[MeasureSettings, int]] = {
    "": (MeasureSettings.off(), 0),
    "_stamped": (MeasureSettings(transit_one_in=((1, 1), (0, 1))), 1),
    "_unsampled": (MeasureSettings(transit_one_in=((1, 65536), (0, 65536))), 0),
}
MEASURED_KINDS = ("xdp_n3_ul_gpdu", "tc_n6_ul_ip", "xdp_n6_dl_ip", "tc_n3_dl_gpdu")


def measure(repeat: int = REPEAT, rounds: int = ROUNDS) -> dict[str, list[float]]:
    """One process: every packet kind, ROUNDS interleaved rounds of program
    and empty baseline; returns the added ns of each round."""
    # a test run executes on the calling CPU: stay on one, away from CPU 0's interrupts
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[-1]})
    dp = DataPlane()
    program_catalog(dp, load_catalog())
    empty = BpfObject(["empty_xdp.c"])
    clock = {
        "once": empty.function("clock_once_xdp", "xdp").fd,
        "nine": empty.function("clock_nine_xdp", "xdp").fd,
    }
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
    for name, (settings, expiry_ns), (point, hook, frame) in cases:
        apply_settings(dp, settings)
        dp.set_transit_expiry(expiry_ns)
        fd = dp.program_fd(point)
        samples = []
        for _ in range(rounds):
            e = libbpf.test_run(baseline[hook], frame, repeat).duration_ns
            t = libbpf.test_run(fd, frame, repeat).duration_ns
            samples.append(t - e)
        # the last entry: the empty program's own cost, negated
        samples.append(
            -1.0
            * statistics.median(
                libbpf.test_run(baseline[hook], frame, repeat).duration_ns for _ in range(3)
            )
        )
        added[name] = samples
    added.update(measure_evidence(dp, baseline, repeat, rounds))
    added.update(measure_security(dp, baseline, repeat, rounds))
    probe = frames()["xdp_n3_ul_gpdu"][2]
    reads = [
        (
            libbpf.test_run(clock["nine"], probe, repeat).duration_ns
            - libbpf.test_run(clock["once"], probe, repeat).duration_ns
        )
        / 8
        for _ in range(rounds)
    ]
    added["clock_read"] = [*reads, 0.0]
    empty.close()
    dp.close()
    return added


#: the N3 kinds whose frames the evidence tap copies while their slice is diagnosed
EVIDENCE_KINDS = ("xdp_n3_ul_gpdu", "tc_n3_dl_gpdu")
#: the frames' slice (TEID 0x10001: eMBB) and another one
FRAME_SLICE, OTHER_SLICE = 1, 2


def measure_evidence(
    dp: DataPlane, baseline: dict[str, int], repeat: int, rounds: int
) -> dict[str, list[float]]:
    """The evidence tap on (measuring off, so that only the tap is added):
    the frame's own slice diagnosed, each frame copied into the ring (the
    ring drained before each round, and a round no longer than it holds);
    or another slice diagnosed, the hand-over every frame then pays."""
    tap = EvidenceTap(dp)
    apply_settings(dp, MeasureSettings.off())
    runs = min(repeat, tap.ring.size // 2 // 160)
    added: dict[str, list[float]] = {}
    try:
        for kind in EVIDENCE_KINDS:
            point, hook, frame = frames()[kind]
            fd = dp.program_fd(point)
            for suffix, flagged in (("_evidence", FRAME_SLICE), ("_evidence_other", OTHER_SLICE)):
                tap.capture({flagged})
                samples = []
                for _ in range(rounds):
                    tap.ring.records()
                    e = libbpf.test_run(baseline[hook], frame, runs).duration_ns
                    t = libbpf.test_run(fd, frame, runs).duration_ns
                    samples.append(t - e)
                empty_ns = statistics.median(
                    libbpf.test_run(baseline[hook], frame, runs).duration_ns for _ in range(3)
                )
                added[kind + suffix] = [*samples, -1.0 * empty_ns]
    finally:
        tap.close()
    return added


def security_frames() -> dict[str, bytes]:
    """Uplink G-PDUs from gNB 192.0.2.1: of eMBB's TEID range from an eMBB
    address (vouched for after its first run), from URLLC's (spoofed:
    checked every time); of a TEID no rule knows; carrying a GTP-U packet."""

    def gpdu(
        source: str, teid: int = 0x10001, dport: int = 9000, payload: bytes = bytes(64)
    ) -> bytes:
        inner = IP(src=source, dst="198.51.100.2") / UDP(sport=40000, dport=dport) / Raw(payload)
        return gtpu_frame(inner, teid=teid, qfi=9, uplink=True)

    inner_gtp = bytes([0x30, 0xFF, 0, 8]) + (0x10002).to_bytes(4, "big") + bytes(8)
    return {
        "vouched": gpdu("10.45.0.7"),
        "spoofed": gpdu("10.46.0.7"),
        "unknown_teid": gpdu("10.45.0.7", teid=0x00500001),
        "gtp_in_gtp": gpdu("10.45.0.7", dport=2152, payload=inner_gtp),
    }


#: the security checks' cases: (frame, protected prefixes, peers listed)
SECURITY_CASES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...] | None]] = {
    # on, the source vouched for by the TEID's slot: no lookup
    "xdp_n3_ul_gpdu_security": ("vouched", (), None),
    # peers listed, the frame's gNB among them: still vouched, no lookup
    "xdp_n3_ul_gpdu_security_peers": ("vouched", (), ("192.0.2.1",)),
    # a spoofed source: every frame checked (session, UE subnet, noted)
    "xdp_n3_ul_gpdu_security_spoofed": ("spoofed", (), None),
    # a TEID of no session and no rule: checked and noted for the scan detection
    "xdp_n3_ul_gpdu_security_unknown_teid": ("unknown_teid", (), None),
    # a G-PDU carrying GTP-U: every frame's inner payload read
    "xdp_n3_ul_gpdu_security_gtp_in_gtp": ("gtp_in_gtp", (), None),
    # an outer source not among the peers: checked and noted
    "xdp_n3_ul_gpdu_security_unknown_peer": ("vouched", (), ("192.0.2.99",)),
    # a protected prefix configured: every frame's destination looked up
    "xdp_n3_ul_gpdu_security_protected": ("vouched", ("203.0.113.0/24",), None),
}


def set_case(dp: DataPlane, name: str) -> bytes:
    """The checks on as the case `name` has them; its frame."""
    source, protected, peers = SECURITY_CASES[name]
    set_checks(
        dp,
        True,
        peers=None if peers is None else [ipaddress.ip_address(p) for p in peers],
        protected=[ipaddress.ip_network(p) for p in protected],
    )
    return security_frames()[source]


def measure_security(
    dp: DataPlane, baseline: dict[str, int], repeat: int, rounds: int
) -> dict[str, list[float]]:
    """The checks on (measuring off, so that only they are added)."""
    apply_settings(dp, MeasureSettings.off())
    fd = dp.program_fd(layout.POINT_N3_INGRESS)
    added: dict[str, list[float]] = {}
    try:
        for name in SECURITY_CASES:
            frame = set_case(dp, name)
            samples = []
            for _ in range(rounds):
                e = libbpf.test_run(baseline["xdp"], frame, repeat).duration_ns
                t = libbpf.test_run(fd, frame, repeat).duration_ns
                samples.append(t - e)
            empty_ns = statistics.median(
                libbpf.test_run(baseline["xdp"], frame, repeat).duration_ns for _ in range(3)
            )
            added[name] = [*samples, -1.0 * empty_ns]
    finally:
        set_checks(dp, False)
    return added


GOALS = {
    "xdp_n3_ul_gpdu": 60.0,
    "xdp_n3_ul_gpdu_stamped": 120.0,
    # the checks on cost a vouched frame no lookup: within the counting budget
    "xdp_n3_ul_gpdu_security": 60.0,
}


def run(quick: bool = False) -> list[Figure]:
    """Each process is one sample set (figures move by tens of ns between
    processes on a VM, with where the maps land in memory); all pooled."""
    processes, repeat, rounds = (1, 2_000, 2) if quick else (PROCESSES, REPEAT, ROUNDS)
    per_process = []
    for _ in range(processes):
        out = subprocess.run(
            [sys.executable, "-m", "bench.per_packet", str(repeat), str(rounds)],
            capture_output=True,
            text=True,
            check=True,
        )
        per_process.append(json.loads(out.stdout.strip().splitlines()[-1]))
    figures = []
    for name in per_process[0]:
        pooled = [v for p in per_process for v in p[name][:-1]]
        suffix = "_ns" if name == "clock_read" else "_added_ns"
        f = figure(
            f"{name}{suffix}",
            pooled,
            "ns",
            what=(
                f"{processes} processes x {rounds} rounds x {repeat} runs, "
                + (
                    "bpf_ktime_get_ns() nine times minus once, over eight"
                    if name == "clock_read"
                    else "minus an empty program"
                    + (
                        ", runs of at most half the evidence ring"
                        if name.endswith(("_evidence", "_evidence_other"))
                        else ""
                    )
                )
            ),
            goal=GOALS.get(name),
            goal_is="at_most" if name in GOALS else None,
        )
        f.detail = {"process_medians": [statistics.median(p[name][:-1]) for p in per_process]}
        if name != "clock_read":
            f.detail["empty_program_ns"] = statistics.median(-p[name][-1] for p in per_process)
        figures.append(f)
    return figures


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]), int(sys.argv[2]))))
