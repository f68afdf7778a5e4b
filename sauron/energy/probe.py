"""The kernel side of the energy estimator: sauron/bpf/c/energy/energy.c
attached to sched_switch, sched_stat_runtime, softirq_entry/exit,
netif_receive_skb, napi_poll and a per-CPU clock tick, plus the kernel's
BPF run-time statistics, switched on for as long as the probe is open.

The probe is compiled and pinned by the build process (sauron.bpf.build
--with energy), like the data plane, so the agent never holds LLVM; the agent
opens the pins and attaches the programs itself, through links only its
process holds: when the agent ends in any way, the probe stops watching
(it costs nothing while no agent reads it) and the next agent attaches it
again. What no agent measured is not measured: the meter says so."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sauron.abi import energy_layout
from sauron.bpf import libbpf
from sauron.bpf.btf import VMLINUX
from sauron.bpf.companions import CLOCK_TICK, ENERGY, RAW_TRACEPOINTS
from sauron.bpf.link_calls import perf_event_link, raw_tracepoint_open
from sauron.bpf.pinned import PinnedMap
from sauron.bpf.pinned_companion import PinnedCompanion
from sauron.bpf.receive_offsets import kernel_receive_offsets
from sauron.host.cpus import online_cpus
from sauron.host.perf_events import PERF_COUNT_SW_CPU_CLOCK, PERF_TYPE_SOFTWARE, perf_event_open

log = logging.getLogger(__name__)

#: the clock tick that closes the running stretch of every CPU, so a task
#: that never leaves its CPU is counted too (and the idle time is current)
TICK_HZ = 100

#: the maps an earlier agent left holding its own state: its watches, the
#: links it received on, and each CPU's running stretch (begun before the
#: time no agent ran: closed now, it would be counted whole)
_RESET_ON_OPEN = (
    "cpu_time",
    "watched_time",
    "watched_tasks",
    "watched_cgroups",
    "watched_threads",
    "energy_config",
    "receiving_links",
)


@dataclass
class CpuTimes:
    """One reading of the probe: per-CPU running totals in nanoseconds."""

    idle_ns: list[int]
    net_rx_ns: list[int]
    net_tx_ns: list[int]
    switches: list[int]
    #: packet softirq time (outside watched contexts) the stack spent on
    #: packets received on Sauron's links, and on packets of other links
    sauron_rx_ns: list[int] = field(default_factory=list)
    other_rx_ns: list[int] = field(default_factory=list)
    #: the packets those softirqs received, on Sauron's links and others
    sauron_rx_packets: list[int] = field(default_factory=list)
    other_rx_packets: list[int] = field(default_factory=list)
    #: watch index -> per-CPU on-CPU time of that watched entry (the packet
    #: softirqs run in its context included, as the kernel charges them)
    watched_ns: dict[int, list[int]] = field(default_factory=dict)
    #: watch index -> per-CPU packet softirq time run in its context
    watched_softirq_ns: dict[int, list[int]] = field(default_factory=dict)
    #: watch index -> per-CPU run time as the scheduler accounts it
    watched_run_ns: dict[int, list[int]] = field(default_factory=dict)

    @property
    def cpus(self) -> int:
        return len(self.idle_ns)

    def softirq_ns(self) -> list[int]:
        return [rx + tx for rx, tx in zip(self.net_rx_ns, self.net_tx_ns, strict=True)]


def read_per_cpu(table: Any, ctype: type[ctypes.Structure]) -> list[list[ctypes.Structure]]:
    """Every index of a per-CPU array, one value per CPU (not summed)."""
    ncpu = libbpf.possible_cpus()
    stride = libbpf.percpu_stride(ctypes.sizeof(ctype))
    _, values, count = libbpf.lookup_batch(
        int(table.map_fd), 4, stride * ncpu, int(table.max_entries)
    )
    return [
        [ctype.from_buffer_copy(values, (i * ncpu + cpu) * stride) for cpu in range(ncpu)]
        for i in range(count)
    ]


class EnergyProbe:
    """with EnergyProbe(build) as probe: probe.watch_tgids({pid: 0}); probe.read()

    `build` is a pinned probe (sauron.bpf.build.pin_companion); opening it
    forgets what an earlier agent left in its maps, then attaches every
    program for as long as this probe stays open."""

    def __init__(self, build: Path, tick_hz: int = TICK_HZ, btf_path: Path = VMLINUX) -> None:
        self.build = build
        #: the descriptors that hold the programs on their events
        self._attached: list[int] = []
        # the run-time statistics first: they count from the moment they are on
        self._stats_fd = libbpf.enable_run_time_stats()
        try:
            self.pins = PinnedCompanion(
                build, "energy probe", (f for f, _ in ENERGY.functions), _RESET_ON_OPEN
            )
            self._programs = self.pins.programs
            for tracepoint, function in RAW_TRACEPOINTS:
                self._attached.append(raw_tracepoint_open(tracepoint, self._programs[function]))
            self._tick_every_cpu(tick_period_ns(tick_hz))
        except BaseException:
            self.close()
            raise
        self._watched_tasks: dict[int, int] = {}
        self._watched_cgroups: dict[int, int] = {}
        #: why packets cannot be told by their link ("" when they can)
        self.receivers_unknown = self._set_receive_offsets(btf_path)
        self._receiving: set[tuple[int, int]] = set()

    def _tick_every_cpu(self, period_ns: int) -> None:
        """The clock tick on every online CPU: a sampling CPU-clock event
        per CPU, the tick program linked to each."""
        for cpu in sorted(online_cpus() or range(libbpf.possible_cpus())):
            event = perf_event_open(
                PERF_TYPE_SOFTWARE,
                PERF_COUNT_SW_CPU_CLOCK,
                cpu=cpu,
                pid=-1,
                sample_period=period_ns,
            )
            if event < 0:
                raise OSError(-event, f"perf_event_open (CPU {cpu} clock): {os.strerror(-event)}")
            self._attached.append(event)
            self._attached.append(perf_event_link(self._programs[CLOCK_TICK], event))

    def table(self, name: str) -> PinnedMap:
        return self.pins.table(name)

    def __enter__(self) -> EnergyProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _set_receive_offsets(self, btf_path: Path) -> str:
        """Why packets cannot be told by their link ("" when they can): the
        build wrote the offsets of the fields the receive hook reads; only
        when it could not is the kernel's BTF read here, for the reason."""
        table = self.table("receive_offsets")
        pinned = energy_layout.ReceiveOffsets.from_buffer_copy(bytes(table[ctypes.c_uint32(0)]))
        if pinned.known:
            return ""
        offsets, why_not = kernel_receive_offsets(btf_path)
        if not why_not:
            table[ctypes.c_uint32(0)] = offsets
        return why_not

    def receive_on(self, links: set[tuple[int, int]]) -> None:
        """Sets the links whose received packets are Sauron's: {(namespace
        inode, interface index)}."""
        table = self.table("receiving_links")
        for netns, ifindex in self._receiving - links:
            with contextlib.suppress(KeyError):
                del table[energy_layout.LinkKey(netns, ifindex)]
        for netns, ifindex in links - self._receiving:
            table[energy_layout.LinkKey(netns, ifindex)] = ctypes.c_uint32(1)
        self._receiving = set(links)

    def _close_stats(self) -> None:
        if self._stats_fd >= 0:
            os.close(self._stats_fd)
            self._stats_fd = -1

    def close(self) -> None:
        """Detaches every program (the pins stay, for the next agent)."""
        for fd in reversed(self._attached):
            os.close(fd)
        self._attached.clear()
        if hasattr(self, "pins"):
            self.pins.close()
        self._close_stats()

    # ---- what is watched -------------------------------------------------
    def watch_tgids(self, tgids: dict[int, int]) -> None:
        """Sets the watched processes: {tgid: watch index}."""
        if tgids != self._watched_tasks:
            self.table("watched_threads").clear()  # learnt again from the new set
        self._sync(self.table("watched_tasks"), self._watched_tasks, tgids, ctypes.c_uint32)
        self._watched_tasks = dict(tgids)

    def watch_cgroups(self, cgroups: dict[int, int]) -> None:
        """Sets the watched cgroups: {cgroup v2 id: watch index}."""
        if cgroups != self._watched_cgroups:
            self.table("watched_threads").clear()
        self._sync(self.table("watched_cgroups"), self._watched_cgroups, cgroups, ctypes.c_uint64)
        self._watched_cgroups = dict(cgroups)
        self.table("energy_config")[ctypes.c_uint32(0)] = ctypes.c_uint32(1 if cgroups else 0)

    @staticmethod
    def _sync(table: Any, old: dict[int, int], new: dict[int, int], key_type: Any) -> None:
        for key in old.keys() - new.keys():
            with contextlib.suppress(KeyError):
                del table[key_type(key)]
        for key, index in new.items():
            if old.get(key) != index:
                if not 0 <= index < energy_layout.MAX_WATCHED:
                    raise ValueError(
                        f"watch index {index} outside 0..{energy_layout.MAX_WATCHED - 1}"
                    )
                table[key_type(key)] = ctypes.c_uint32(index)

    # ---- reading -----------------------------------------------------------
    def read(self) -> CpuTimes:
        cpu = read_per_cpu(self.table("cpu_time"), energy_layout.CpuTime)[0]
        watched = read_per_cpu(self.table("watched_time"), energy_layout.WatchedTime)
        return CpuTimes(
            idle_ns=[int(c.idle_ns) for c in cpu],
            net_rx_ns=[int(c.net_rx_ns) for c in cpu],
            net_tx_ns=[int(c.net_tx_ns) for c in cpu],
            switches=[int(c.switches) for c in cpu],
            sauron_rx_ns=[int(c.sauron_rx_ns) for c in cpu],
            other_rx_ns=[int(c.other_rx_ns) for c in cpu],
            sauron_rx_packets=[int(c.sauron_rx_packets) for c in cpu],
            other_rx_packets=[int(c.other_rx_packets) for c in cpu],
            watched_ns={
                index: [int(w.on_cpu_ns) for w in per_cpu] for index, per_cpu in enumerate(watched)
            },
            watched_softirq_ns={
                index: [int(w.softirq_ns) for w in per_cpu] for index, per_cpu in enumerate(watched)
            },
            watched_run_ns={
                index: [int(w.run_ns) for w in per_cpu] for index, per_cpu in enumerate(watched)
            },
        )

    def own_programs(self) -> list[libbpf.ProgramRunStats]:
        """The kernel's accounting of the probe's own programs: its cost."""
        return [self.program_stats(function) for function, _ in ENERGY.functions]

    def program_stats(self, function: str) -> libbpf.ProgramRunStats:
        return libbpf.program_run_stats(self._programs[function])


def tick_period_ns(hz: int) -> int:
    """The perf sample period, in nanoseconds of CPU clock, of a tick rate."""
    if hz <= 0:
        raise ValueError("the clock tick needs a positive rate")
    return 1_000_000_000 // hz


@contextlib.contextmanager
def probe_in(folder: Path, tick_hz: int = TICK_HZ) -> Iterator[EnergyProbe]:
    """A probe built in this process (it loads bcc: for tests and
    benchmarks, never the agent), pinned under `folder`, opened; its pins
    removed after."""
    from sauron.bpf.build import pin_companion

    try:
        with EnergyProbe(pin_companion(folder, ENERGY), tick_hz) as probe:
            yield probe
    finally:
        shutil.rmtree(folder, ignore_errors=True)
