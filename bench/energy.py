"""What the energy probe costs per context switch.

Two processes pinned to one CPU pass a byte back and forth over pipes, so
every round trip is two context switches. The same run measures the round
trip without the probe and with it, alternately, and reads the kernel's
own statistics of the sched_switch and sched_stat_runtime programs (run
time / run count; the scheduler reports run time about once per switch).

It also sends UDP datagrams over loopback (each received in a packet
softirq) and reads the statistics of the receive hook, which every packet
the node receives runs while the probe is open, and of the NAPI poll hook.

    python -m bench.energy [--round-trips N] [--rounds R] [--datagrams D]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
from pathlib import Path

from bench.ping_pong import pipe_ping_pong
from sauron.bpf.build import pin_companion, remove_tree
from sauron.bpf.companions import ENERGY
from sauron.energy.probe import EnergyProbe

RESULTS = Path(__file__).with_name("energy_results.json")


def ping_pong(round_trips: int, cpu: int = 0) -> float:
    """Nanoseconds per round trip (two switches) between two processes on one CPU."""
    return pipe_ping_pong(round_trips, cpu)


def loopback_datagrams(count: int) -> None:
    """Datagrams to a socket of this process over loopback, read as they come."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(count):
        sender.sendto(bytes(200), receiver.getsockname())
        receiver.recv(256)
    sender.close()
    receiver.close()


def receive_hook_ns(probe: EnergyProbe, datagrams: int) -> tuple[float, float]:
    """(ns per run of the receive hook, runs per datagram) over loopback."""
    before = probe.program_stats("sauron_receive")
    loopback_datagrams(datagrams)
    after = probe.program_stats("sauron_receive")
    runs = after.run_count - before.run_count
    return (after.run_time_ns - before.run_time_ns) / max(runs, 1), runs / datagrams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round-trips", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--datagrams", type=int, default=50000)
    args = parser.parse_args()
    receive_ns: list[float] = []
    receive_runs: list[float] = []
    without: list[float] = []
    with_probe: list[float] = []
    per_run: list[float] = []
    runtime_per_run: list[float] = []
    runtime_per_switch: list[float] = []
    # compiled and pinned once, as the agent's build does; opened (attached) each round
    pins = Path(f"/sys/fs/bpf/sauron-bench-energy-{os.getpid()}")
    build = pin_companion(pins, ENERGY)
    try:
        for _ in range(args.rounds):
            without.append(ping_pong(args.round_trips))
            with EnergyProbe(build) as probe:
                before = probe.program_stats("sauron_sched_switch")
                before_rt = probe.program_stats("sauron_sched_runtime")
                with_probe.append(ping_pong(args.round_trips))
                after = probe.program_stats("sauron_sched_switch")
                after_rt = probe.program_stats("sauron_sched_runtime")
                runs = after.run_count - before.run_count
                per_run.append((after.run_time_ns - before.run_time_ns) / max(runs, 1))
                rt_runs = after_rt.run_count - before_rt.run_count
                runtime_per_run.append(
                    (after_rt.run_time_ns - before_rt.run_time_ns) / max(rt_runs, 1)
                )
                runtime_per_switch.append(rt_runs / max(runs, 1))
                ns, per_datagram = receive_hook_ns(probe, args.datagrams)
                receive_ns.append(ns)
                receive_runs.append(per_datagram)
    finally:
        remove_tree(pins)
    base, hooked = statistics.median(without), statistics.median(with_probe)
    result = {
        "round_trip_ns_without_probe": round(base),
        "round_trip_ns_with_probe": round(hooked),
        "added_ns_per_switch": round((hooked - base) / 2),
        "ratio_with_over_without": round(hooked / base, 3),
        "sched_switch_program_ns_per_run": round(statistics.median(per_run)),
        "sched_stat_runtime_program_ns_per_run": round(statistics.median(runtime_per_run)),
        "sched_stat_runtime_runs_per_switch": round(statistics.median(runtime_per_switch), 2),
        "receive_program_ns_per_run": round(statistics.median(receive_ns)),
        "receive_program_runs_per_datagram": round(statistics.median(receive_runs), 2),
        "receive_program_ns_spread": [round(min(receive_ns)), round(max(receive_ns))],
        "round_trips": args.round_trips,
        "rounds": args.rounds,
    }
    print(
        f"pipe ping-pong on one CPU, median of {args.rounds} rounds of "
        f"{args.round_trips} round trips (2 context switches each)\n"
        f"  without the probe  {base / 1000:8.2f} us per round trip\n"
        f"  with the probe     {hooked / 1000:8.2f} us per round trip   "
        f"ratio {hooked / base:.3f}\n"
        f"  added per switch   {(hooked - base) / 2:8.0f} ns (wall clock)\n"
        f"  sched_switch program, kernel statistics: "
        f"{statistics.median(per_run):.0f} ns per run\n"
        f"  sched_stat_runtime program: {statistics.median(runtime_per_run):.0f} ns per run, "
        f"{statistics.median(runtime_per_switch):.2f} runs per switch\n"
        f"  receive program (every packet the node receives): "
        f"{statistics.median(receive_ns):.0f} ns per run "
        f"({min(receive_ns):.0f}-{max(receive_ns):.0f} over the rounds), "
        f"{statistics.median(receive_runs):.2f} runs per loopback datagram"
    )
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
