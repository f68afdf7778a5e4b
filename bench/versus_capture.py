"""Sauron against what operators run instead: a user-space capture that
produces the same per-slice counts from the same traffic.

Both watch the UPF's N3 end while paced uplink G-PDUs of the three default
slices arrive. Sauron's CPU per frame: the kernel's own run-time statistics
of its N3 program (the tail-called measurement included) plus the agent's
share, the CPU time its thread spends reading the maps and building the
interval's snapshot once a second during the run. The capture: a Python
process reading an AF_PACKET socket (the cheapest user-space reader; tshark
costs more) that parses each frame to its TEID and counts it to the
catalog's slice; its CPU is its own user and system time. The kernel's copy
of each frame into the capture socket runs in the receive softirq and is
not charged to it, which favours the capture.

Beside it runs the cheapest capture there is: Debian's tcpdump writing the
first 128 bytes of every frame to /dev/null (no parsing at all), its CPU
its own user and system time read from the kernel when it exits (wait4);
its closing count of captured frames is kept with the figures. And in runs
of their own, an empty program on the same hook under the same traffic gives the floor
every program pays in real traffic (the call, the run-time statistics, cold
instruction caches), which Sauron's kernel time is held against.

Per-slice counts from Sauron, from the capture and from what the generator
sent must all agree.

All of that at a paced 50 000 frames/s, and again at the veth's ceiling: the
generator sending an exact number of frames as fast as it can, Sauron
counting and tcpdump watching the same N3. There the veth's receive backlog
drops what the receiving softirq cannot take, before any hook or tap sees
it, so what the generator sent is no measure of the work done: Sauron's CPU
is divided by the N3 program's run count (the frames its hook saw), and
every frame it ran on must be in Sauron's counts, per slice or as a frame
that is no G-PDU; tcpdump's CPU is divided by the frames it captured, its
count of frames the kernel dropped before it could read them kept beside.
The Python reader is left out of the ceiling runs: one system call and a
parse in the interpreter per frame fall far behind the ceiling, its socket
buffer overflows, and a cost per frame it read while it competes with
tcpdump for the second CPU would say nothing about counting every frame."""

from __future__ import annotations

import bisect
import math
import multiprocessing
import os
import re
import resource
import signal
import socket
import struct
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bench.figures import Figure, figure
from bench.generator import FrameGenerator, Sent
from bench.n3_link import N3, N3Link, n3_link, uplink_frames
from bench.throughput import empty_program
from sauron.abi import layout
from sauron.agent.config import InterfaceConfig
from sauron.agent.interfaces import attach_interfaces, attach_on_hook
from sauron.agent.runtime import AgentRuntime, ProgramMaps
from sauron.bpf import ingress_hooks, libbpf
from sauron.bpf.links import Links
from sauron.bpf.loader import BpfObject, DataPlane
from sauron.bpf.maps import TransitExpiry
from sauron.bpf.measurements import MeasureSettings, apply_settings, settings_for
from sauron.bpf.rules import program_catalog
from sauron.catalog import Catalog, load_catalog
from sauron.host.netns import inside
from sauron.kpi.engine import KpiEngine

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SO_RCVBUFFORCE = 33  # not in the socket module


def _capture(ns: str, ready: Any, stop: Any, out: Any) -> None:
    """The user-space pipeline: frame -> TEID -> slice -> count."""
    catalog = load_catalog()
    ranges = sorted((r.first, r.last, s.name) for s in catalog.slices for r in s.spec.teid_ranges)
    firsts = [r[0] for r in ranges]
    with inside(ns):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
    sock.bind((N3, 0))
    sock.settimeout(0.2)
    counts: Counter[str] = Counter()
    buf = bytearray(2048)
    before = resource.getrusage(resource.RUSAGE_SELF)
    ready.set()
    while not (stop.is_set() and _drained(sock)):
        try:
            n, addr = sock.recvfrom_into(buf)
        except TimeoutError:
            continue
        if addr[2] == PACKET_OUTGOING or n < 50 or buf[12:14] != b"\x08\x00":
            continue
        ihl = (buf[14] & 0x0F) * 4
        udp = 14 + ihl
        if buf[23] != 17 or struct.unpack_from("!H", buf, udp + 2)[0] != 2152:
            continue
        gtp = udp + 8
        if buf[gtp + 1] != 0xFF:
            continue
        teid = struct.unpack_from("!I", buf, gtp + 4)[0]
        i = bisect.bisect_right(firsts, teid) - 1
        counts[ranges[i][2] if i >= 0 and teid <= ranges[i][1] else "unclassified"] += 1
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out.put((dict(counts), cpu))


def _drained(sock: socket.socket) -> bool:
    try:
        sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (BlockingIOError, TimeoutError):
        return True
    return False


@dataclass
class TcpdumpRun:
    """What tcpdump cost and saw: its CPU seconds, the frames it captured and
    those the kernel dropped before it read them (-1 when its closing lines
    did not say)."""

    cpu: float = 0.0
    captured: int = -1
    dropped: int = -1


@contextmanager
def tcpdump(ns: str, ifname: str) -> Iterator[TcpdumpRun]:
    """tcpdump -i IF -w /dev/null -s 128 inside `ns` for the body's span; its
    CPU is the user and system time the kernel reports when it exits."""
    result = TcpdumpRun()
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, "tcpdump", "-i", ifname, "-w", "/dev/null", "-s", "128"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    started = proc.stderr.readline()  # "tcpdump: listening on ..." once it captures
    if "listening on" not in started:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"tcpdump did not start: {started.strip()}")
    try:
        yield result
    finally:
        proc.send_signal(signal.SIGINT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        result.cpu = usage.ru_utime + usage.ru_stime
        closing = proc.stderr.read()
        proc.stderr.close()
        result.captured = _closing_count(closing, "captured")
        result.dropped = _closing_count(closing, "dropped by kernel")


def _closing_count(closing: str, what: str) -> int:
    """N of tcpdump's closing line "N packets <what>", -1 without one."""
    found = re.search(rf"(\d+) packets? {what}", closing)
    return int(found.group(1)) if found else -1


class _Ticker(threading.Thread):
    """The agent's interval loop: read the maps and build the snapshot once
    a second, CPU time of this thread summed."""

    def __init__(self, engine: KpiEngine) -> None:
        super().__init__(daemon=True)
        self.engine = engine
        self.cpu = 0.0
        self.ticks = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(1.0):
            t0 = time.thread_time()
            self.engine.tick()
            self.cpu += time.thread_time() - t0
            self.ticks += 1


@dataclass
class _SauronOnN3:
    """Sauron's data path attached to a fresh N3 as the agent attaches it,
    the agent's reading of its maps, and a generator at the gNB's end."""

    catalog: Catalog
    dp: DataPlane
    link: N3Link
    #: (slice, TEID, frame) the generator sends round-robin
    frames: list[tuple[str, int, bytes]]
    gen: FrameGenerator
    engine: KpiEngine
    #: the N3 ingress program, whose run-time statistics are Sauron's kernel CPU
    program: int

    def slice_counts(self) -> dict[str, int]:
        """Uplink frames per slice in the agent's latest reading."""
        counters = self.engine.counters
        return {
            s.name: int(counters.slice(layout.POINT_N3_INGRESS, s.id, 0).packets)
            for s in self.catalog.slices
        }

    def other_frames(self) -> int:
        """Frames the N3 program ran on that were no G-PDU (ARP, IPv6
        neighbour discovery, ...), in the same reading."""
        counters = self.engine.counters
        point = layout.POINT_N3_INGRESS
        return counters.event(point, layout.EV_FRAMES) - counters.event(point, layout.EV_GTPU)


@contextmanager
def _sauron_on_n3(sessions: int, measuring: bool) -> Iterator[_SauronOnN3]:
    """Run-time statistics are on before the programs are attached, so the
    N3 program's run count covers every frame it ever ran on."""
    catalog = load_catalog()
    dp = DataPlane()
    program_catalog(dp, catalog)
    apply_settings(dp, settings_for(catalog) if measuring else MeasureSettings.off())
    stats_fd = libbpf.enable_run_time_stats()
    frames = uplink_frames(sessions)
    try:
        with n3_link() as link, Links() as att:
            hooks = attach_interfaces(
                dp, [InterfaceConfig(name=N3, role="n3", netns=link.upf)], att
            )
            with inside(link.gnb):
                gen = FrameGenerator("gnb0", [f for _, _, f in frames])
            # read as the agent reads: per-slice rows up to the catalog's slices
            engine = AgentRuntime(
                catalog, ProgramMaps(dp, TransitExpiry(dp), catalog.slice_rows)
            ).engine
            program = dp.program_fd(
                layout.POINT_N3_INGRESS, hook=ingress_hooks.program_type(hooks[N3])
            )
            try:
                yield _SauronOnN3(catalog, dp, link, frames, gen, engine, program)
            finally:
                gen.close()
    finally:
        os.close(stats_fd)
        dp.close()


@dataclass
class _Watched:
    """One stretch of traffic as Sauron and tcpdump saw it."""

    sent: Sent
    #: the N3 program's run time and run count over the stretch
    kernel_ns: int
    hook_frames: int
    #: its run count since it was attached
    program_runs: int
    agent_cpu: float
    ticks: int
    dump: TcpdumpRun


def _watch(n3: _SauronOnN3, total: int, pps: float) -> _Watched:
    """`total` frames at about `pps` (math.inf: as fast as the generator
    goes) while the agent's interval loop reads the maps and tcpdump
    captures on the same N3. One more reading once both have stopped, outside
    the agent's CPU, so Sauron's counts hold every frame the program ran on."""
    ticker = _Ticker(n3.engine)
    kernel0 = libbpf.program_run_stats(n3.program)
    ticker.start()
    with tcpdump(n3.link.upf, N3) as dump:
        sent = n3.gen.paced(total, pps)
        time.sleep(1.5)  # the interval in progress ends, the captures drain
    ticker.stop.set()
    ticker.join()
    kernel1 = libbpf.program_run_stats(n3.program)
    n3.engine.tick()
    return _Watched(
        sent=sent,
        kernel_ns=kernel1.run_time_ns - kernel0.run_time_ns,
        hook_frames=kernel1.run_count - kernel0.run_count,
        program_runs=kernel1.run_count,
        agent_cpu=ticker.cpu,
        ticks=ticker.ticks,
        dump=dump,
    )


def one_run(total: int, pps: float, sessions: int, measuring: bool) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    with _sauron_on_n3(sessions, measuring) as n3:
        ready, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
        reader = ctx.Process(target=_capture, args=(n3.link.upf, ready, stop, out), daemon=True)
        reader.start()
        while not ready.wait(0.2):
            if not reader.is_alive():
                raise RuntimeError("the capture process ended before it started reading")
        seen = _watch(n3, total, pps)
        stop.set()
        capture_counts, capture_cpu = out.get(timeout=60)
        reader.join(10)
        truth: Counter[str] = Counter()
        for (name, _, _), n in zip(n3.frames, n3.gen.sent_per_frame(), strict=True):
            truth[name] += n
        sauron_counts = n3.slice_counts()
    frames = seen.sent.frames
    return {
        "frames": frames,
        "pps": seen.sent.pps,
        "kernel_ns": seen.kernel_ns / frames,
        "kernel_runs": seen.hook_frames,
        "agent_ns": seen.agent_cpu * 1e9 / frames,
        "agent_cpu_s": seen.agent_cpu,
        "ticks": seen.ticks,
        "capture_ns": capture_cpu * 1e9 / frames,
        "tcpdump_ns": seen.dump.cpu * 1e9 / frames,
        "tcpdump_captured": seen.dump.captured,
        "truth": dict(truth),
        "sauron": sauron_counts,
        "capture": {k: v for k, v in capture_counts.items() if k != "unclassified"},
    }


def ceiling_run(total: int, sessions: int) -> dict[str, Any]:
    """Sauron counting and tcpdump on the same N3 while the generator sends
    `total` frames as fast as it can. The frames the hook saw, the N3
    program's run count, are Sauron's divisor; tcpdump's are those it
    captured."""
    with _sauron_on_n3(sessions, measuring=False) as n3:
        seen = _watch(n3, total, math.inf)
        sauron_counts = n3.slice_counts()
        other = n3.other_frames()
    if seen.hook_frames <= 0 or seen.dump.captured <= 0:
        raise RuntimeError(
            f"at the ceiling the N3 program ran {seen.hook_frames} times and tcpdump "
            f"captured {seen.dump.captured} frames: no frames to divide by"
        )
    counted = sum(sauron_counts.values())
    return {
        "sent": seen.sent.frames,
        "hook_frames": seen.hook_frames,
        "pps": seen.hook_frames / seen.sent.seconds,
        "sauron_ns": (seen.kernel_ns + seen.agent_cpu * 1e9) / seen.hook_frames,
        "kernel_ns": seen.kernel_ns / seen.hook_frames,
        "agent_ns": seen.agent_cpu * 1e9 / seen.hook_frames,
        "agent_cpu_s": seen.agent_cpu,
        "ticks": seen.ticks,
        "tcpdump_ns": seen.dump.cpu * 1e9 / seen.dump.captured,
        "tcpdump_captured": seen.dump.captured,
        "tcpdump_dropped": seen.dump.dropped,
        "counts": {
            "sent": seen.sent.frames,
            "program_runs": seen.program_runs,
            "sauron": sauron_counts,
            "other_frames": other,
        },
        "agree": counted + other == seen.program_runs and counted <= seen.sent.frames,
    }


def empty_run(total: int, pps: float, sessions: int) -> float:
    """Kernel ns per frame of an empty program under the same traffic, on the
    hook the agent takes on this link (auto)."""
    empty = BpfObject(["empty_xdp.c"])
    stats_fd = libbpf.enable_run_time_stats()
    hook = ingress_hooks.candidates("auto", "veth")[0]
    try:
        with n3_link() as link, Links() as att:
            program = empty_program(empty, hook)
            attach_on_hook(att, link.upf, N3, hook, int(program.fd))
            with inside(link.gnb):
                gen = FrameGenerator("gnb0", [f for _, _, f in uplink_frames(sessions)])
            before = libbpf.program_run_stats(int(program.fd))
            sent = gen.paced(total, pps)
            after = libbpf.program_run_stats(int(program.fd))
            gen.close()
    finally:
        os.close(stats_fd)
        empty.close()
    return (after.run_time_ns - before.run_time_ns) / sent.frames


def run(quick: bool = False) -> list[Figure]:
    runs, total, pps, sessions = (1, 20_000, 20_000, 30) if quick else (3, 250_000, 50_000, 1000)
    ceiling_total = 20_000 if quick else 1_000_000
    counting, measuring, empty, ceiling = [], [], [], []
    for _ in range(runs):  # interleaved
        counting.append(one_run(total, pps, sessions, measuring=False))
        measuring.append(one_run(total, pps, sessions, measuring=True))
        empty.append(empty_run(total, pps, sessions))
        ceiling.append(ceiling_run(ceiling_total, sessions))
    both = counting + measuring
    sauron = [r["kernel_ns"] + r["agent_ns"] for r in counting]
    sauron_measuring = [r["kernel_ns"] + r["agent_ns"] for r in measuring]
    capture = [r["capture_ns"] for r in both]
    dumps = [r["tcpdump_ns"] for r in both]
    agree = all(r["truth"] == r["sauron"] == r["capture"] for r in both)
    rate = f"{counting[0]['pps']:.0f} frames/s, {3 * sessions} sessions"
    return [
        figure(
            "empty_kernel_cpu_per_packet_ns",
            empty,
            "ns",
            what=f"an empty program on the same N3 and hook under the same traffic; {rate}",
        ),
        figure(
            "kernel_cpu_per_packet_vs_empty_ratio",
            [r["kernel_ns"] / e for r, e in zip(counting, empty, strict=True)],
            "ratio",
            goal=2.0,
            goal_is="at_most",
            what="Sauron's N3 program ÷ the empty program, counting, runs interleaved",
        ),
        figure(
            "tcpdump_cpu_per_packet_ns",
            dumps,
            "ns",
            what="tcpdump -w /dev/null -s 128 on the same N3 meanwhile: its user + system time",
        ),
        figure(
            "cpu_per_packet_vs_tcpdump_ratio",
            [s / c["tcpdump_ns"] for s, c in zip(sauron, counting, strict=True)],
            "ratio",
            goal=0.2,
            goal_is="at_most",
            what="Sauron counting (kernel + agent) ÷ tcpdump, same frames, same run",
            detail={"tcpdump_captured": [r["tcpdump_captured"] for r in both]},
        ),
        figure(
            "sauron_cpu_per_packet_ns",
            sauron,
            "ns",
            what=f"counting per slice: kernel + agent's share; {rate}",
        ),
        figure(
            "sauron_kernel_cpu_per_packet_ns",
            [r["kernel_ns"] for r in counting],
            "ns",
            what="counting: N3 program, kernel's run-time statistics",
        ),
        figure(
            "agent_cpu_per_interval_ms",
            [r["agent_cpu_s"] * 1e3 / max(1, r["ticks"]) for r in counting],
            "ms CPU",
            goal=10.0,
            goal_is="at_most",
            what=f"the agent's map reading and snapshot per 1 s interval; {rate}",
        ),
        figure(
            "sauron_agent_cpu_per_packet_ns",
            [r["agent_ns"] for r in counting],
            "ns",
            what="counting: the agent's map reading and snapshots, per frame",
        ),
        figure(
            "sauron_measuring_cpu_per_packet_ns",
            sauron_measuring,
            "ns",
            what="with the default catalog's latency sampling on: kernel + agent",
        ),
        figure(
            "sauron_measuring_kernel_cpu_per_packet_ns",
            [r["kernel_ns"] for r in measuring],
            "ns",
            what="with latency sampling: N3 program alone",
        ),
        figure(
            "userspace_capture_cpu_per_packet_ns",
            capture,
            "ns",
            what="Python AF_PACKET reader counting per slice",
        ),
        figure(
            "cpu_per_packet_vs_userspace_ratio",
            [s / c["capture_ns"] for s, c in zip(sauron, counting, strict=True)],
            "ratio",
            goal=1 / 50,
            goal_is="at_most",
            what="Sauron counting ÷ capture counting, same run (50 times less is 0.02)",
        ),
        figure(
            "cpu_per_packet_vs_userspace_measuring_ratio",
            [s / c["capture_ns"] for s, c in zip(sauron_measuring, measuring, strict=True)],
            "ratio",
            what="Sauron with latency sampling ÷ capture counting only",
        ),
        Figure(
            "per_slice_counts_agree",
            1.0 if agree else 0.0,
            "bool",
            goal=1.0,
            goal_is="at_least",
            what="generator, Sauron and capture: the same count for every slice in every run",
            runs=len(both),
            detail={"runs": [{k: r[k] for k in ("truth", "sauron", "capture")} for r in both]},
        ),
        *_ceiling_figures(ceiling, f"generator unpaced, {3 * sessions} sessions"),
    ]


def _ceiling_figures(ceiling: list[dict[str, Any]], rate: str) -> list[Figure]:
    """The ceiling runs: Sauron per frame its hook saw, tcpdump per frame it
    captured (the Python reader cannot keep up there and is not run)."""
    dumps = {k: [r[k] for r in ceiling] for k in ("tcpdump_captured", "tcpdump_dropped")}
    return [
        figure(
            "ceiling_pps",
            [r["pps"] for r in ceiling],
            "frames/s",
            what=f"frames the N3 hook saw per second the generator sent, Sauron counting and "
            f"tcpdump on it; {rate} (the veth's receive backlog drops the rest before any hook)",
            detail={
                "sent": [r["sent"] for r in ceiling],
                "hook": [r["hook_frames"] for r in ceiling],
            },
        ),
        figure(
            "ceiling_sauron_cpu_per_packet_ns",
            [r["sauron_ns"] for r in ceiling],
            "ns",
            what="at the ceiling: Sauron counting, kernel + agent, per frame the N3 program ran on",
            detail={k: [r[k] for r in ceiling] for k in ("kernel_ns", "agent_ns")},
        ),
        figure(
            "ceiling_tcpdump_cpu_per_packet_ns",
            [r["tcpdump_ns"] for r in ceiling],
            "ns",
            what="at the ceiling: tcpdump -w /dev/null -s 128, user + system, per frame captured",
            detail=dumps,
        ),
        figure(
            "ceiling_cpu_per_packet_vs_tcpdump_ratio",
            [r["sauron_ns"] / r["tcpdump_ns"] for r in ceiling],
            "ratio",
            goal=0.2,
            goal_is="at_most",
            what="at the ceiling: Sauron counting ÷ tcpdump, each per frame it saw, same run",
            detail=dumps,
        ),
        figure(
            "ceiling_agent_cpu_per_interval_ms",
            [r["agent_cpu_s"] * 1e3 / max(1, r["ticks"]) for r in ceiling],
            "ms CPU",
            what=f"at the ceiling: the agent's map reading and snapshot per 1 s interval; {rate}",
        ),
        Figure(
            "ceiling_counts_agree",
            1.0 if all(r["agree"] for r in ceiling) else 0.0,
            "bool",
            goal=1.0,
            goal_is="at_least",
            what="at the ceiling: every frame the N3 program ran on is in Sauron's counts, "
            "per slice or as no G-PDU; the slices together count no more than was sent",
            runs=len(ceiling),
            detail={"runs": [r["counts"] for r in ceiling]},
        ),
    ]
