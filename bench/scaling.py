"""Scaling: the data path's cost per packet and the agent's cost per
collection interval as the maps fill with sessions, and as the catalog grows.

- TEIDs: 1 000, 100 000 and 1 000 000 distinct uplink TEIDs sent through
  the real N3 program, then the cost of one packet of a session picked at
  random from them (single BPF_PROG_TEST_RUN runs over 20 000 different
  frames, minus the empty program on the same frames: realistic traffic
  meets the maps cold, not one hot frame repeated), and the CPU time of one
  full interval (read every map, build the snapshot, check the SLAs).
- Slices: catalogs of 3, 64 and 255 slices (255 is the most a catalog
  holds: SAURON_MAX_SLICES is 256 slice ids, id 0 being unclassified
  traffic), each slice with a UE pool, a TEID range and SLA targets, traffic
  in every one, and the same 10 200 sessions spread over them (the
  sessions' count has its own figures above). The interval is read the agent's way, up to the catalog's
  highest slice id.
- The kernel memory the data plane's maps take (the kernel's own memlock
  accounting of each map), most of it per CPU."""

from __future__ import annotations

import os
import random
import statistics
import time
from typing import Any

from scapy.layers.inet import IP, UDP
from scapy.packet import Raw

from bench.figures import Figure, figure
from sauron.abi import layout
from sauron.agent.runtime import AgentRuntime, ProgramMaps
from sauron.bpf import libbpf
from sauron.bpf.loader import BpfObject, DataPlane
from sauron.bpf.maps import read_counters
from sauron.bpf.rules import program_catalog
from sauron.catalog import Catalog, load_catalog, parse_catalog
from sauron.testbed.gtpu_frames import gtpu_frame

TEID_AT = 14 + 20 + 8 + 4
INNER_SRC_AT = 14 + 20 + 8 + 8 + 4 + 12  # after the PDU Session Container
PROBES = 20_000
#: sessions in every slice case, so that only the number of slices changes
SLICE_CASE_SESSIONS = 10_200


#: the issue's goals for a full interval, by TEID count
INTERVAL_GOALS: dict[str, dict[str, Any]] = {"100k": {"goal": 50.0, "goal_is": "at_most"}}


def _template() -> bytearray:
    inner = IP(src="10.1.0.1", dst="198.51.100.9") / UDP(sport=40000, dport=5000) / Raw(bytes(64))
    return bytearray(gtpu_frame(inner, 0x10000, qfi=9))


def _frame(template: bytearray, teid: int, ue: int) -> bytes:
    template[TEID_AT : TEID_AT + 4] = teid.to_bytes(4, "big")
    template[INNER_SRC_AT : INNER_SRC_AT + 4] = ue.to_bytes(4, "big")
    return bytes(template)


def catalog_of(slices: int) -> Catalog:
    """`slices` slices: slice i owns TEIDs i<<16.. and UEs 10.i.0.0/16."""
    return parse_catalog(
        {
            "slices": [
                {
                    "name": f"slice{i}",
                    "id": i,
                    "snssai": {"sst": 1 + i % 3, "sd": f"{i:06x}"},
                    "ue_subnets": [f"10.{i}.0.0/16"],
                    "teid_ranges": [{"first": i << 16, "last": (i << 16) | 0xFFFF}],
                    "sla": {"transit_latency_ms": {"p99": 50}, "max_loss_ratio": 0.01},
                }
                for i in range(1, slices + 1)
            ]
        },
        f"{slices} generated slices",
    )


def _sessions(catalog: Catalog, count: int) -> list[tuple[int, int]]:
    """(TEID, UE address) of `count` sessions spread over the slices."""
    ids = [s.id for s in catalog.slices]
    out = []
    for n in range(count):
        sid = ids[n % len(ids)]
        k = n // len(ids)
        out.append(
            (
                (sid << 16) + (k & 0xFFFF) + ((k >> 16) << 24),
                (10 << 24) | (sid << 16) | (k & 0xFFFF),
            )
        )
    return out


def _default_sessions(count: int) -> list[tuple[int, int]]:
    """For the default catalog: TEIDs from 0x10000 up (the first 3 x 65 536
    are the three slices', the rest unclassified), UEs over 10.45-47/16."""
    return [(0x10000 + n, (10 << 24) | ((45 + n % 3) << 16) | (n & 0xFFFF)) for n in range(count)]


def _send_all(fd: int, sessions: list[tuple[int, int]]) -> None:
    template = _template()
    for teid, ue in sessions:
        libbpf.test_run(fd, _frame(template, teid, ue))


def _per_packet_ns(fd: int, empty_fd: int, sessions: list[tuple[int, int]], probes: int) -> float:
    template = _template()
    picked = random.Random(7).sample(sessions, min(probes, len(sessions)))
    added = []
    for teid, ue in picked:
        frame = _frame(template, teid, ue)
        added.append(
            libbpf.test_run(fd, frame).duration_ns - libbpf.test_run(empty_fd, frame).duration_ns
        )
    return statistics.median(added)


def _interval_ms(
    dp: DataPlane, catalog: Catalog, moving: list[tuple[int, int]], ticks: int
) -> list[float]:
    # the agent's engine, ticked here: every map read in full each interval
    engine = AgentRuntime(
        catalog, ProgramMaps(dp, slices=catalog.slice_rows, shortcut=False)
    ).engine
    fd = dp.program_fd(layout.POINT_N3_INGRESS)
    out = []
    for _ in range(ticks):
        _send_all(fd, moving)  # some sessions move every interval
        t0 = time.process_time()
        engine.tick()
        out.append((time.process_time() - t0) * 1e3)
    return out


def _case(
    catalog: Catalog, sessions: list[tuple[int, int]], probes: int, ticks: int, repeats: int
) -> dict[str, Any]:
    dp = DataPlane()
    program_catalog(dp, catalog)
    empty = BpfObject(["empty_xdp.c"])
    empty_fd = empty.function("empty_xdp", "xdp").fd
    fd = dp.program_fd(layout.POINT_N3_INGRESS)
    _send_all(fd, sessions)
    per_packet = [_per_packet_ns(fd, empty_fd, sessions, probes) for _ in range(repeats)]
    interval = _interval_ms(dp, catalog, sessions[:: max(1, len(sessions) // 2000)], ticks)
    held = len(read_counters(dp).teids)
    empty.close()
    dp.close()
    return {"per_packet": per_packet, "interval": interval, "held": held}


def map_memory_bytes() -> int:
    """The memlock the kernel charges for every BPF map this process holds
    open (from /proc/self/fdinfo)."""
    total = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") != "anon_inode:bpf-map":
                continue
            with open(f"/proc/self/fdinfo/{fd}") as info:
                for line in info:
                    if line.startswith("memlock:"):
                        total += int(line.split()[1])
        except OSError:
            continue  # the directory's own descriptor, closed by now
    return total


def _map_memory() -> list[Figure]:
    before = map_memory_bytes()
    dp = DataPlane()
    used = map_memory_bytes() - before
    dp.close()
    cpus = libbpf.possible_cpus()
    return [
        Figure(
            "datapath_map_memory_mb",
            round(used / 1e6, 1),
            "MB",
            what=f"kernel memory of every data-plane map on {cpus} possible CPUs",
        )
    ]


def run(quick: bool = False) -> list[Figure]:
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[-1]})
    teid_counts = {"1k": 1_000, "100k": 100_000, "1m": 1_000_000}
    probes, ticks, repeats = (500, 2, 1) if quick else (PROBES, 5, 3)
    if quick:
        teid_counts = {"1k": 1_000}
    figures = _map_memory()
    default = load_catalog()
    for label, n in teid_counts.items():
        r = _case(default, _default_sessions(n), probes, ticks, repeats)
        figures += [
            figure(
                f"scaling_teids_{label}_per_packet_ns",
                r["per_packet"],
                "ns",
                what=f"{n} TEIDs sent, {r['held']} held; a random session's packet",
            ),
            figure(
                f"scaling_teids_{label}_interval_ms",
                r["interval"],
                "ms CPU",
                what=f"{n} TEIDs sent, {r['held']} held; one full interval",
                **INTERVAL_GOALS.get(label, {}),
            ),
        ]
    for slices in (3, 64, layout.MAX_SLICES - 1) if not quick else (3,):
        catalog = catalog_of(slices)
        r = _case(catalog, _sessions(catalog, SLICE_CASE_SESSIONS), probes, ticks, repeats)
        figures += [
            figure(
                f"scaling_slices_{slices}_per_packet_ns",
                r["per_packet"],
                "ns",
                what=f"{slices} slices, {SLICE_CASE_SESSIONS} sessions over them",
            ),
            figure(
                f"scaling_slices_{slices}_interval_ms",
                r["interval"],
                "ms CPU",
                what=f"{slices} slices with SLA targets, traffic in each",
            ),
        ]
    return figures
