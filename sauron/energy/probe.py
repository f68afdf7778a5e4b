"""The kernel side of the energy estimator: sauron/bpf/c/energy/energy.c attached to
sched_switch, sched_stat_runtime, softirq_entry/exit, netif_receive_skb,
napi_poll and a per-CPU clock tick, plus the kernel's BPF run-time statistics, switched on for as long as
the probe is open."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sauron.abi import energy_layout
from sauron.bpf import libbpf
from sauron.bpf.btf import VMLINUX, BtfError, read_kernel_types
from sauron.bpf.loader import BpfObject

log = logging.getLogger(__name__)

#: the clock tick that closes the running stretch of every CPU, so a task
#: that never leaves its CPU is counted too (and the idle time is current)
TICK_HZ = 100

PERF_TYPE_SOFTWARE = 1
PERF_COUNT_SW_CPU_CLOCK = 0

RAW_TRACEPOINTS = (
    ("sched_switch", "sauron_sched_switch"),
    ("sched_stat_runtime", "sauron_sched_runtime"),
    ("softirq_entry", "sauron_softirq_entry"),
    ("softirq_exit", "sauron_softirq_exit"),
    ("netif_receive_skb", "sauron_receive"),
    ("napi_poll", "sauron_napi_poll"),
)
#: the kernel fields the receive hook reads: (struct, field path)
RECEIVE_FIELDS = {
    "skb_dev": ("sk_buff", "dev"),
    "napi_dev": ("napi_struct", "dev"),
    "dev_ifindex": ("net_device", "ifindex"),
    "dev_net": ("net_device", "nd_net.net"),
    "net_inum": ("net", "ns.inum"),
}


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


class EnergyProbe(BpfObject):
    """with EnergyProbe() as probe: probe.watch_tgids({pid: 0}); probe.read()"""

    def __init__(self, tick_hz: int = TICK_HZ, btf_path: Path = VMLINUX) -> None:
        # the run-time statistics first: they count from the moment they are on
        self._stats_fd = libbpf.enable_run_time_stats()
        try:
            super().__init__(["energy.c"])
            for tracepoint, function in RAW_TRACEPOINTS:
                self.bpf.attach_raw_tracepoint(tp=tracepoint.encode(), fn_name=function.encode())
            self.bpf.attach_perf_event(
                ev_type=PERF_TYPE_SOFTWARE,
                ev_config=PERF_COUNT_SW_CPU_CLOCK,
                fn_name=b"sauron_clock_tick",
                sample_period=tick_period_ns(tick_hz),
            )
        except BaseException:
            self._close_stats()
            raise
        self._watched_tasks: dict[int, int] = {}
        self._watched_cgroups: dict[int, int] = {}
        #: why packets cannot be told by their link ("" when they can)
        self.receivers_unknown = self._set_receive_offsets(btf_path)
        self._receiving: set[tuple[int, int]] = set()

    def _set_receive_offsets(self, btf_path: Path) -> str:
        """The offsets of the fields the receive hook reads, from the running
        kernel's BTF; without them every received packet's owner is unknown
        (the reason is returned)."""
        offsets = energy_layout.ReceiveOffsets()
        try:
            types = read_kernel_types(btf_path)
            for name, (struct_name, path) in RECEIVE_FIELDS.items():
                setattr(offsets, name, types.offset(struct_name, path))
        except BtfError as exc:
            return str(exc)
        offsets.known = 1
        self.table("receive_offsets")[ctypes.c_uint32(0)] = offsets
        return ""

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
        try:
            super().close()
        finally:
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
        names = [function for _, function in RAW_TRACEPOINTS] + ["sauron_clock_tick"]
        return [self.program_stats(n) for n in names]

    def program_stats(self, function: str) -> libbpf.ProgramRunStats:
        return libbpf.program_run_stats(int(self.bpf.funcs[function.encode()].fd))


def tick_period_ns(hz: int) -> int:
    """The perf sample period, in nanoseconds of CPU clock, of a tick rate."""
    if hz <= 0:
        raise ValueError("the clock tick needs a positive rate")
    return 1_000_000_000 // hz
