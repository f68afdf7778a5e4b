"""What the diagnosis probe costs, detached (every slice healthy) and
attached (a slice degraded), side by side in one run.

Two workloads that wake and switch all the time, each between two
processes pinned to one CPU, one of them (the worker) watched as a UPF is:

1. pipe ping-pong: a byte back and forth over two pipes; a round trip is
   two wakeups, two context switches and four read/write system calls;
2. futex ping-pong: a word in shared memory, FUTEX_WAKE and FUTEX_WAIT; a
   round trip is two wakeups, two switches and four futex calls, the
   worker's waits timed by the probe.

Rounds alternate detached and attached (which goes first swaps each
round); each figure is the median over the rounds with its spread, the
cost per wakeup and switch half a round trip's difference, taken within
each pair of rounds. The kernel's own statistics of each program (their
clock reads added, so taken in a pass of their own after the timed rounds)
give the time per run and the runs per round trip, and show that no
program runs while the probe is detached. The agent's side is one `read()`
of the probe, as the agent makes each interval while attached.

    python -m bench --only diagnosis     # the section, in the table
    python -m bench.diagnosis            # the same, printed, and bench/diagnosis_results.json
"""

from __future__ import annotations

import ctypes
import json
import mmap
import os
import platform
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import ping_pong
from bench.figures import Figure, figure, machine
from sauron.bpf import libbpf
from sauron.bpf.build import pin_companion
from sauron.bpf.companions import DIAGNOSIS
from sauron.bpf.pinned import PROGRAMS
from sauron.bpf.task_offsets import FUTEX_CALLS
from sauron.diagnosis.probe import DiagnosisProbe

RESULTS = Path(__file__).with_name("diagnosis_results.json")
COMMAND = "python -m bench --only diagnosis"
#: the CPU both processes of a workload share: the first this process may
#: use (the diagnosis tests' contending processes take the last)
CPU = sorted(os.sched_getaffinity(0))[0]
FUTEX_WAIT, FUTEX_WAKE = 0, 1
#: the watch index the worker gets
WATCH = 0

Workload = Callable[[int, Callable[[int], None]], float]


def pipe_ping_pong(round_trips: int, watch: Callable[[int], None]) -> float:
    """Nanoseconds per round trip over pipes on CPU (bench.ping_pong)."""
    return ping_pong.pipe_ping_pong(round_trips, CPU, watch)


def futex_ping_pong(round_trips: int, watch: Callable[[int], None]) -> float:
    """Nanoseconds per round trip of a turn word handed back and forth with
    futex calls between this process and a forked worker on one CPU."""
    futex_nr = FUTEX_CALLS[platform.machine()][0]
    libc = ctypes.CDLL(None, use_errno=True)
    shared = mmap.mmap(-1, mmap.PAGESIZE)  # MAP_SHARED: the worker sees the same word
    turn = ctypes.c_int.from_buffer(shared)
    addr = ctypes.c_void_p(ctypes.addressof(turn))
    wait, wake = ctypes.c_int(FUTEX_WAIT), ctypes.c_int(FUTEX_WAKE)
    zero, one = ctypes.c_int(0), ctypes.c_int(1)
    with ping_pong.pinned(CPU):
        pid = os.fork()
        if pid == 0:
            for _ in range(round_trips):
                while turn.value == 0:
                    libc.syscall(futex_nr, addr, wait, zero, None, None, 0)
                turn.value = 0
                libc.syscall(futex_nr, addr, wake, one, None, None, 0)
            os._exit(0)
        watch(pid)
        started = time.perf_counter_ns()
        for _ in range(round_trips):
            turn.value = 1
            libc.syscall(futex_nr, addr, wake, one, None, None, 0)
            while turn.value == 1:
                libc.syscall(futex_nr, addr, wait, one, None, None, 0)
        elapsed = time.perf_counter_ns() - started
        os.waitpid(pid, 0)
    del turn
    shared.close()
    return elapsed / round_trips


WORKLOADS: dict[str, Workload] = {"pipe": pipe_ping_pong, "futex": futex_ping_pong}


#: how each round runs a workload: the probe detached (the worker watched,
#: as the agent keeps its watch while detached), attached with the worker
#: watched, attached with nothing watched (what every other task pays)
MODES = ("detached", "attached", "attached_unwatched")


def alternate(
    probe: DiagnosisProbe, workload: Workload, round_trips: int, rounds: int
) -> dict[str, list[float]]:
    """Nanoseconds per round trip in each mode, one of each per round, the
    order rotating from round to round."""
    timed: dict[str, list[float]] = {mode: [] for mode in MODES}
    for n in range(rounds):
        for mode in MODES[n % 3 :] + MODES[: n % 3]:

            def watch(pid: int, mode: str = mode) -> None:
                probe.watch({} if mode == "attached_unwatched" else {pid: WATCH})

            if mode != "detached":
                probe.attach()
            try:
                timed[mode].append(workload(round_trips, watch))
            finally:
                probe.detach()
                probe.watch({})
    return timed


def program_stats(
    probe: DiagnosisProbe, programs: dict[str, int], workload: Workload, round_trips: int
) -> dict[str, Any]:
    """With the kernel's statistics on: per program, ns per run and runs per
    round trip attached (node-wide: every task's switches and system calls
    count), and every program's runs over a detached run."""

    def runs() -> dict[str, libbpf.ProgramRunStats]:
        return {name: libbpf.program_run_stats(fd) for name, fd in programs.items()}

    def watch(pid: int) -> None:
        probe.watch({pid: WATCH})

    stats_fd = libbpf.enable_run_time_stats()
    try:
        before = runs()
        workload(round_trips, watch)
        after = runs()
        detached_runs = sum(after[p].run_count - before[p].run_count for p in programs)
        probe.attach()
        try:
            before = runs()
            workload(round_trips, watch)
            after = runs()
        finally:
            probe.detach()
            probe.watch({})
    finally:
        os.close(stats_fd)
    per_program = {}
    for name in programs:
        count = after[name].run_count - before[name].run_count
        spent = after[name].run_time_ns - before[name].run_time_ns
        per_program[name] = {
            "ns_per_run": spent / count if count else 0.0,
            "runs_per_round_trip": count / round_trips,
            "ns_per_round_trip": spent / round_trips,
        }
    return {"detached_runs": detached_runs, "attached": per_program}


def read_cost(probe: DiagnosisProbe, reads: int) -> tuple[list[float], list[float], dict[str, int]]:
    """Microseconds of one read() and of the difference of two readings,
    with what a degraded interval leaves in the maps: the worker's
    run-queue and futex waits and the tasks that held its CPU."""

    def watch(pid: int) -> None:
        probe.watch({pid: WATCH})

    probe.attach()
    try:
        futex_ping_pong(5000, watch)
        pipe_ping_pong(5000, watch)
    finally:
        probe.detach()
        probe.watch({})
    read_us, since_us = [], []
    first = probe.read()
    for _ in range(reads):
        t = time.perf_counter_ns()
        reading = probe.read()
        read_us.append((time.perf_counter_ns() - t) / 1000)
        t = time.perf_counter_ns()
        reading.since(first)
        since_us.append((time.perf_counter_ns() - t) / 1000)
    held = {
        "wait_histograms": len(first.waits),
        "culprits": sum(len(c) for c in first.culprits.values()),
        "drop_reasons": len(first.drops),
    }
    return read_us, since_us, held


def measure(quick: bool) -> dict[str, Any]:
    round_trips, rounds, reads = (500, 3, 20) if quick else (20_000, 12, 300)
    pins = Path(f"/sys/fs/bpf/sauron-bench-diagnosis-{os.getpid()}")
    build = pin_companion(pins, DIAGNOSIS)
    programs = {f: libbpf.obj_get(str(build / PROGRAMS / f)) for f, _ in DIAGNOSIS.functions}
    try:
        with DiagnosisProbe(build) as probe:
            if probe.waits_unknown:
                raise RuntimeError(f"the probe cannot time waits here: {probe.waits_unknown}")
            timed = {
                name: alternate(probe, workload, round_trips, rounds)
                for name, workload in WORKLOADS.items()
            }
            kernel = {
                name: program_stats(probe, programs, workload, round_trips)
                for name, workload in WORKLOADS.items()
            }
            read_us, since_us, held = read_cost(probe, reads)
    finally:
        for fd in programs.values():
            os.close(fd)
        shutil.rmtree(pins, ignore_errors=True)
    return {
        "command": COMMAND,
        "cpu": CPU,
        "round_trips": round_trips,
        "rounds": rounds,
        "timed": timed,
        "kernel": kernel,
        "read_us": read_us,
        "since_us": since_us,
        "reading_held": held,
    }


def figures_of(m: dict[str, Any]) -> list[Figure]:
    out: list[Figure] = []
    where = (
        f"two processes pinned to one CPU, the worker watched; {m['rounds']} rounds of "
        f"{m['round_trips']} round trips each way, alternating"
    )
    for name, t in m["timed"].items():
        detached, attached, unwatched = (t[mode] for mode in MODES)
        kernel = m["kernel"][name]
        out += [
            figure(
                f"diagnosis_{name}_round_trips_per_s_detached",
                [1e9 / ns for ns in detached],
                "round trips/s",
                what=f"{name} ping-pong, the probe open and detached; {where}",
                detail={"ns_per_round_trip": detached},
            ),
            figure(
                f"diagnosis_{name}_round_trips_per_s_attached",
                [1e9 / ns for ns in attached],
                "round trips/s",
                what=f"{name} ping-pong, the probe attached; {where}",
                detail={"ns_per_round_trip": attached},
            ),
            figure(
                f"diagnosis_{name}_attached_over_detached_ratio",
                [d / a for d, a in zip(detached, attached, strict=True)],
                "ratio",
                what=f"{name} ping-pong: round trips/s attached / detached, within each round",
            ),
            figure(
                f"diagnosis_{name}_added_ns_per_switch",
                [(a - d) / 2 for d, a in zip(detached, attached, strict=True)],
                "ns",
                what=(
                    f"{name} ping-pong, the worker watched: wall-clock time the attached "
                    "probe adds per context switch (half a round trip: one switch, its "
                    "wakeup if the task slept, two system calls), within each round"
                ),
                detail={"kernel_statistics": kernel["attached"]},
            ),
            figure(
                f"diagnosis_{name}_added_ns_per_switch_unwatched",
                [(u - d) / 2 for d, u in zip(detached, unwatched, strict=True)],
                "ns",
                what=(
                    f"{name} ping-pong, nothing watched: what the attached probe adds per "
                    "switch to the node's other tasks, within each round"
                ),
                detail={"ns_per_round_trip": unwatched},
            ),
            figure(
                f"diagnosis_{name}_programs_ns_per_round_trip",
                [sum(p["ns_per_round_trip"] for p in kernel["attached"].values())],
                "ns",
                what=(
                    f"{name} ping-pong: the probe's programs' own time per round trip "
                    "(kernel statistics, node-wide runs)"
                ),
                detail=kernel["attached"],
            ),
            figure(
                f"diagnosis_{name}_detached_program_runs",
                [kernel["detached_runs"]],
                "runs",
                goal=0.0,
                goal_is="at_most",
                what=f"{name} ping-pong: runs of the probe's programs while detached",
            ),
        ]
    out += [
        figure(
            "diagnosis_probe_read_us",
            m["read_us"],
            "us",
            what=(
                "one read() of the probe by the agent, the maps holding a degraded "
                f"interval's waits and culprits ({m['reading_held']})"
            ),
            detail={"since_us": statistics.median(m["since_us"])},
        ),
    ]
    return out


def run(quick: bool = False) -> list[Figure]:
    """For `make bench`: the probe's cost on both workloads, and its read."""
    m = measure(quick)
    found = figures_of(m)
    if not quick:
        RESULTS.write_text(
            json.dumps(
                {
                    "machine": machine(),
                    "command": COMMAND,
                    "figures": [f.as_json() for f in found],
                },
                indent=2,
            )
            + "\n"
        )
    return found


def main() -> None:
    started = time.monotonic()
    found = run()
    for f in found:
        print(f"{f.name:<48} {f.value:>14.3f} ±{f.spread:<10.3f} {f.unit}")
    print(f"\n{machine()}; {time.monotonic() - started:.0f} s; written {RESULTS}")


if __name__ == "__main__":
    main()
