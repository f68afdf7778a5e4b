"""The energy probe's programs (sauron/bpf/c/energy/energy.c) and the
kernel events each one hooks: owned here so that the build, which loads
them, and the probe, which attaches them, agree. Its build is pinned apart
from the data plane's (energy-<identity>), as the energy estimator can be
switched off."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sauron.abi import energy_layout
from sauron.abi.source import assemble
from sauron.bpf import libbpf
from sauron.bpf.btf import VMLINUX, BtfError, read_kernel_types
from sauron.bpf.loader import PERF_EVENT, RAW_TRACEPOINT

SOURCES = ["energy.c"]
#: a pinned probe's folder, in an agent's pin folder: energy-<identity>
PREFIX = "energy-"

#: (raw tracepoint, the function attached to it)
RAW_TRACEPOINTS = (
    ("sched_switch", "sauron_sched_switch"),
    ("sched_stat_runtime", "sauron_sched_runtime"),
    ("softirq_entry", "sauron_softirq_entry"),
    ("softirq_exit", "sauron_softirq_exit"),
    ("netif_receive_skb", "sauron_receive"),
    ("napi_poll", "sauron_napi_poll"),
)
#: the function run by a per-CPU clock tick (a perf software event)
CLOCK_TICK = "sauron_clock_tick"


def functions() -> list[tuple[str, str]]:
    """(function, program kind) of every program the probe loads."""
    return [(function, RAW_TRACEPOINT) for _, function in RAW_TRACEPOINTS] + [
        (CLOCK_TICK, PERF_EVENT)
    ]


def identity() -> str:
    """The hash of the probe's sources (every header, as compiled) and the
    CPU count its arrays are sized for."""
    digest = hashlib.sha256(assemble(SOURCES).encode())
    digest.update(f"-DSAURON_CPUS={libbpf.possible_cpus()}".encode())
    return digest.hexdigest()[:16]


#: the kernel fields the receive hook reads: (struct, field path)
RECEIVE_FIELDS = {
    "skb_dev": ("sk_buff", "dev"),
    "napi_dev": ("napi_struct", "dev"),
    "dev_ifindex": ("net_device", "ifindex"),
    "dev_net": ("net_device", "nd_net.net"),
    "net_inum": ("net", "ns.inum"),
}


def receive_offsets(btf_path: Path = VMLINUX) -> tuple[energy_layout.ReceiveOffsets, str]:
    """The offsets of the fields the receive hook reads, from the running
    kernel's BTF, with "" (or offsets marked unknown, and why). The build
    reads them, as parsing the BTF costs its reader about 35 MB and half a
    second; pins live no longer than the kernel they were read from."""
    offsets = energy_layout.ReceiveOffsets()
    try:
        types = read_kernel_types(btf_path)
        for name, (struct_name, path) in RECEIVE_FIELDS.items():
            setattr(offsets, name, types.offset(struct_name, path))
    except BtfError as exc:
        return energy_layout.ReceiveOffsets(), str(exc)
    offsets.known = 1
    return offsets, ""
