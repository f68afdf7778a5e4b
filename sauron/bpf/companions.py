"""The objects built and pinned beside the data plane, each when the agent's
configuration asks for it: the energy probe (energy.c), the diagnosis
probe (diagnosis.c) and the N4 watch's socket filter (pfcp_filter.c). Each is compiled by the build process
(sauron.bpf.build --with NAME), pinned unattached in a folder of its own
(<prefix><identity>: a start finds it by its sources), and opened and
attached by the agent for as long as the agent runs: the probe's links
and the filter's sockets die with the agent's process."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sauron.abi.source import assemble
from sauron.bpf import libbpf
from sauron.bpf.loader import PERF_EVENT, RAW_TRACEPOINT, SOCKET


@dataclass(frozen=True)
class Companion:
    """One object built beside the data plane."""

    name: str
    sources: tuple[str, ...]
    #: (function, program kind) of every program it loads
    functions: tuple[tuple[str, str], ...]
    #: what the build says when it cannot be built
    what: str

    @property
    def prefix(self) -> str:
        return f"{self.name}-"

    def identity(self) -> str:
        """The hash of its sources (every header, as compiled) and the CPU
        count its arrays are sized for."""
        digest = hashlib.sha256(assemble(list(self.sources)).encode())
        digest.update(f"-DSAURON_CPUS={libbpf.possible_cpus()}".encode())
        return digest.hexdigest()[:16]

    def folder_name(self) -> str:
        return f"{self.prefix}{self.identity()}"


#: (raw tracepoint, the energy probe's function attached to it)
RAW_TRACEPOINTS = (
    ("sched_switch", "sauron_sched_switch"),
    ("sched_stat_runtime", "sauron_sched_runtime"),
    ("softirq_entry", "sauron_softirq_entry"),
    ("softirq_exit", "sauron_softirq_exit"),
    ("netif_receive_skb", "sauron_receive"),
    ("napi_poll", "sauron_napi_poll"),
)
#: the energy probe's function run by a per-CPU clock tick (a perf software event)
CLOCK_TICK = "sauron_clock_tick"

ENERGY = Companion(
    "energy",
    ("energy.c",),
    (*((function, RAW_TRACEPOINT) for _, function in RAW_TRACEPOINTS), (CLOCK_TICK, PERF_EVENT)),
    "the energy probe",
)
#: the N4 watch's socket filter: only PFCP reaches the agent
PFCP_FILTER_FUNCTION = "sauron_pfcp_filter"
N4_FILTER = Companion(
    "n4", ("pfcp_filter.c",), ((PFCP_FILTER_FUNCTION, SOCKET),), "the N4 watch's filter"
)
#: (raw tracepoint, the diagnosis probe's function attached to it)
DIAGNOSIS_TRACEPOINTS = (
    ("sched_wakeup", "sauron_diag_wakeup"),
    ("sched_wakeup_new", "sauron_diag_wakeup"),
    ("sched_switch", "sauron_diag_switch"),
    ("sys_enter", "sauron_diag_sys_enter"),
    ("sys_exit", "sauron_diag_sys_exit"),
    ("kfree_skb", "sauron_diag_drop"),
)
DIAGNOSIS = Companion(
    "diagnosis",
    ("diagnosis.c",),
    tuple(dict.fromkeys((function, RAW_TRACEPOINT) for _, function in DIAGNOSIS_TRACEPOINTS)),
    "the diagnosis probe",
)
COMPANIONS = {c.name: c for c in (ENERGY, N4_FILTER, DIAGNOSIS)}
