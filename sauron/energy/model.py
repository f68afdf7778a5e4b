"""From one interval's measured CPU work to joules per slice.

Cycles: each source's on-CPU time on each CPU times that CPU's frequency.
The sources never overlap: a watched process's time holds the packet
softirqs that ran in its context (the kernel charges them to it, so the
figure agrees with top and schedstat), the softirq source is the packet
softirq time that ran anywhere else (sauron/bpf/c/energy/energy.c keeps the two apart), and
the BPF programs' run time is part of the softirq or process time it ran in,
so it is reported per slice (Sauron's own cost) but not counted again.

Attribution: of each CPU's packet softirq time, the slices get the
stack's work on packets received on Sauron's links, and of the work no
packet owns (the backlog's driver work, NET_TX) the share that work makes
of all packets' work; other traffic on the node stays the node's
(cycles_softirq_node). That goes to the slices by the packets
Sauron's receiving programs handled on that CPU; shared processes by each slice's
share of all the packets the data-plane programs handled; a process bound
to a slice wholly to it; each program's run time by the slices' share of
that program's packets.

Joules: cycles times joules per cycle, from the power model (RAPL-calibrated
or a profile). The node's energy is the idle part plus every busy cycle of
the interval; what the slices do not account for is "unattributed", so the
slices plus unattributed equal the node figure exactly, and slices never get
more than the node's busy cycles (scaled down and flagged if measurement
windows ever disagree)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sauron.energy.frequency import Frequencies
from sauron.energy.profiles import PowerProfile
from sauron.energy.units import Cycles, Joules, Seconds, cycles_in, energy_at, watts

IdleRule = Literal["none", "proportional", "equal"]
PROFILE_METHOD = "profile"


@dataclass
class SliceEnergy:
    cycles_softirq: float = 0.0
    cycles_process: float = 0.0
    #: the data-plane programs' share, part of the two above
    cycles_bpf: float = 0.0
    dynamic_joules: float = 0.0
    idle_joules: float = 0.0
    joules: float = 0.0
    watts: float = 0.0
    #: the traffic that entered the UPF, which the per-unit figures divide by
    packets: int = 0
    bytes: int = 0
    joules_per_gb: float | None = None
    microjoules_per_packet: float | None = None
    cumulative_joules: float = 0.0
    #: the second method (split_by_volume): the slices' energy as their
    #: share of the N3 data volume, and the volume it was split by
    n3_octets: int = 0
    volume_share: float = 0.0
    volume_joules: float = 0.0
    cumulative_volume_joules: float = 0.0


@dataclass
class NodeEnergy:
    method: str = ""  # "rapl powercap", "rapl perf" or "profile"
    energy_source: str = ""  # the counters read, or the profile's file
    profile: str = ""
    profile_reason: str = ""
    cycle_source: str = ""
    idle_rule: str = "none"
    cpus: int = 0
    frequency_mhz: float = 0.0
    busy_ratio: float = 0.0
    busy_cycles: float = 0.0
    #: CPU time the hypervisor took while this node's CPUs were busy (a
    #: virtual machine's steal), left out of every figure
    stolen_seconds: float = 0.0
    joules_per_gigacycle: float = 0.0
    cycles_softirq: float = 0.0
    #: of cycles_softirq, the part given to no slice: the softirq work of
    #: packets Sauron did not handle (other traffic on the node)
    cycles_softirq_node: float = 0.0
    #: how cycles_softirq split: the stack's work on packets received on
    #: Sauron's links, on other links' packets, and no packet's (driver work
    #: of the backlog, NET_TX), of which the slices get their packets' share
    cycles_softirq_sauron_links: float = 0.0
    cycles_softirq_other_links: float = 0.0
    cycles_softirq_unowned: float = 0.0
    #: packets the CPUs' packet softirqs received (outside watched
    #: processes), and of them those received on Sauron's links
    softirq_packets: int = 0
    softirq_packets_sauron: int = 0
    cycles_process: float = 0.0
    cycles_bpf: float = 0.0
    #: the energy probe's own programs (sched_switch, softirq, receive, clock tick)
    cycles_observer: float = 0.0
    dynamic_joules: float = 0.0
    idle_joules: float = 0.0
    joules: float = 0.0
    watts: float = 0.0
    attributed_joules: float = 0.0
    unattributed_joules: float = 0.0
    capped: bool = False
    cumulative_joules: float = 0.0
    #: of the interval, the time before this agent started (no agent ran):
    #: no energy was measured for it, and every figure leaves it out
    unmeasured_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


@dataclass
class PowerReading:
    """The power model's answer for one interval."""

    method: str
    energy_source: str
    joules_per_cycle: float
    dynamic: Joules
    idle: Joules


def profile_power(
    profile: PowerProfile, busy_cycles: Cycles, cpus: int, seconds: Seconds
) -> PowerReading:
    """A busy thread at the nominal clock draws the package's dynamic power
    over its threads; the node's idle power is its threads' share of the
    package idle power."""
    per_cycle = profile.dynamic_w_per_thread / profile.nominal_hz
    return PowerReading(
        method=PROFILE_METHOD,
        energy_source=f"energy/{profile.name}.yaml",
        joules_per_cycle=per_cycle,
        dynamic=Joules(busy_cycles * per_cycle),
        idle=energy_at(profile.idle_w_per_thread * cpus, seconds),  # type: ignore[arg-type]
    )


def rapl_power(
    measured: Joules,
    method: str,
    source: str,
    profile: PowerProfile,
    packages: int,
    busy_cycles: Cycles,
    seconds: Seconds,
) -> PowerReading:
    """Measured package energy: the profile's idle power (never more than
    was measured) is the idle part, the rest is spread over the interval's
    busy cycles."""
    idle = Joules(min(measured, profile.idle_w * packages * seconds))
    dynamic = Joules(measured - idle)
    if busy_cycles <= 0:
        # nothing ran: the whole measurement is idle
        return PowerReading(method, source, 0.0, Joules(0.0), measured)
    return PowerReading(method, source, dynamic / busy_cycles, dynamic, idle)


@dataclass
class IntervalWork:
    """What the kernel measured over one interval."""

    seconds: Seconds
    busy_ns: list[int]  # per CPU, steal taken out
    #: per CPU, time the hypervisor ran something else while this CPU was busy
    stolen_ns: list[int]
    #: per CPU, packet softirq time outside the watched processes' contexts
    softirq_ns: list[int]
    #: per CPU, of that time: the stack's work on packets received on
    #: Sauron's links, and on packets of other links (the rest is no
    #: packet's: driver work before a poll's first packet, NET_TX)
    sauron_rx_ns: list[int]
    other_rx_ns: list[int]
    #: per CPU, the packets those softirqs received: on Sauron's links, all
    sauron_rx_packets: list[int]
    rx_packets: list[int]
    #: per CPU, slice -> the packets Sauron's receiving programs handled
    received: list[dict[str, int]]
    #: watch index -> per-CPU run time as the scheduler accounts it (with the
    #: packet softirqs run in its context)
    watched_ns: dict[int, list[int]]
    #: watch index -> the slice it is bound to (absent: shared)
    watch_slice: dict[int, str]
    #: data-plane program (attach point) -> run time
    program_ns: dict[int, int]
    observer_ns: int
    #: attach point -> slice name -> packets the point's program handled
    packets: dict[int, dict[str, int]]
    #: slice -> (packets, bytes) that entered the UPF
    traffic: dict[str, tuple[int, int]]


def _per_cpu_cycles(ns: list[int], f: Frequencies) -> Cycles:
    return Cycles(sum(cycles_in(t, hz) for t, hz in zip(ns, f.per_cpu, strict=False)))


def _shares(counts: dict[str, int]) -> dict[str, float]:
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()} if total else {}


def attribute(
    work: IntervalWork,
    frequencies: Frequencies,
    power: PowerReading,
    slices: list[str],
    idle_rule: IdleRule = "none",
) -> tuple[NodeEnergy, dict[str, SliceEnergy]]:
    out = {name: SliceEnergy() for name in slices}
    node = NodeEnergy(method=power.method, energy_source=power.energy_source)
    node.idle_rule = idle_rule
    node.cpus = len(work.busy_ns)
    node.cycle_source = frequencies.source
    node.frequency_mhz = frequencies.mean() / 1e6
    node.busy_cycles = _per_cpu_cycles(work.busy_ns, frequencies)
    node.stolen_seconds = sum(work.stolen_ns) / 1e9
    node.busy_ratio = sum(work.busy_ns) / (node.cpus * work.seconds * 1e9) if node.cpus else 0.0
    node.joules_per_gigacycle = power.joules_per_cycle * 1e9

    all_packets: dict[str, int] = {}
    for per_slice in work.packets.values():
        for name, n in per_slice.items():
            all_packets[name] = all_packets.get(name, 0) + n
    share = _shares(all_packets)

    node.cycles_softirq = _per_cpu_cycles(work.softirq_ns, frequencies)
    _split_softirq(work, frequencies, node, out)
    for index, per_cpu in work.watched_ns.items():
        cycles = _per_cpu_cycles(per_cpu, frequencies)
        node.cycles_process += cycles
        bound = work.watch_slice.get(index)
        if bound is not None:
            if bound in out:
                out[bound].cycles_process += cycles
            continue
        for name, s in share.items():
            if name in out:
                out[name].cycles_process += cycles * s
    mean_hz = frequencies.mean()
    for point, ns in work.program_ns.items():
        cycles = cycles_in(ns, mean_hz)
        node.cycles_bpf += cycles
        for name, s in _shares(work.packets.get(point, {})).items():
            if name in out:
                out[name].cycles_bpf += cycles * s
    node.cycles_observer = cycles_in(work.observer_ns, mean_hz)

    node.dynamic_joules = power.dynamic
    node.idle_joules = power.idle
    node.joules = power.dynamic + power.idle
    node.watts = watts(Joules(node.joules), work.seconds)

    measured = sum(e.cycles_softirq + e.cycles_process for e in out.values())
    scale = 1.0
    if measured > node.busy_cycles > 0 or (measured > 0 and node.busy_cycles <= 0):
        scale = node.busy_cycles / measured if node.busy_cycles > 0 else 0.0
        node.capped = True
    for e in out.values():
        e.dynamic_joules = (e.cycles_softirq + e.cycles_process) * scale * power.joules_per_cycle
    # the dynamic energy the slices get never exceeds the node's (float rounding aside)
    dynamic_total = sum(e.dynamic_joules for e in out.values())
    if dynamic_total > node.dynamic_joules > 0:
        for e in out.values():
            e.dynamic_joules *= node.dynamic_joules / dynamic_total
        node.capped = True

    _share_idle(out, node.idle_joules, idle_rule)
    for name, e in out.items():
        e.joules = e.dynamic_joules + e.idle_joules
        e.watts = watts(Joules(e.joules), work.seconds)
        packets, octets = work.traffic.get(name, (0, 0))
        e.packets, e.bytes = packets, octets
        e.joules_per_gb = e.joules / (octets / 1e9) if octets else None
        e.microjoules_per_packet = e.joules * 1e6 / packets if packets else None
    node.attributed_joules = sum(e.joules for e in out.values())
    node.unattributed_joules = node.joules - node.attributed_joules
    return node, out


def split_by_volume(
    node: NodeEnergy, slices: dict[str, SliceEnergy], octets: dict[str, int]
) -> None:
    """The second attribution, beside CPU time: the same energy the slices
    were given (node.attributed_joules) split by each slice's share of the
    interval's N3 data volume (uplink and downlink octets), the way TS
    23.501's example formulas derive a UPF's energy per S-NSSAI
    (E_UPF x DV_S-NSSAI,UPF / DV_UPF). Without N3 volume there is nothing to
    split by: every slice gets 0."""
    total = sum(octets.get(name, 0) for name in slices)
    for name, e in slices.items():
        e.n3_octets = octets.get(name, 0)
        e.volume_share = e.n3_octets / total if total else 0.0
        e.volume_joules = node.attributed_joules * e.volume_share


def _split_softirq(
    work: IntervalWork, frequencies: Frequencies, node: NodeEnergy, out: dict[str, SliceEnergy]
) -> None:
    """Each CPU's softirq cycles that were Sauron's: the stack's work on
    packets received on its links, and of the work no packet owns (the
    backlog's driver work, NET_TX, freeing) the share its packets' work makes
    of all packets' work (when packets cannot be told by their link: the
    share its packets make of all received). They go to the slices by the
    packets Sauron's receiving programs handled on that CPU; the rest is the
    node's."""

    def at(values: list[int], cpu: int) -> int:
        return values[cpu] if cpu < len(values) else 0

    given = 0.0
    for cpu, ns in enumerate(work.softirq_ns):
        hz = frequencies.per_cpu[cpu] if cpu < len(frequencies.per_cpu) else frequencies.mean()
        received = work.received[cpu] if cpu < len(work.received) else {}
        own = sum(received.values())
        everyone = at(work.rx_packets, cpu)
        node.softirq_packets += everyone
        node.softirq_packets_sauron += at(work.sauron_rx_packets, cpu)
        owned = min(ns, at(work.sauron_rx_ns, cpu))
        others = min(ns - owned, at(work.other_rx_ns, cpu))
        unowned = ns - owned - others
        node.cycles_softirq_sauron_links += cycles_in(owned, hz)
        node.cycles_softirq_other_links += cycles_in(others, hz)
        node.cycles_softirq_unowned += cycles_in(unowned, hz)
        if own == 0:
            continue  # no packet of a slice: the node's
        if owned + others:
            share = owned / (owned + others)  # as the packets' own work split
        else:  # packets not told by their link: by their numbers
            share = min(1.0, own / everyone) if everyone else 0.0
        sauron_cycles = cycles_in(owned + unowned * share, hz)
        for name, n in received.items():
            if name in out and n:
                out[name].cycles_softirq += sauron_cycles * n / own
                given += sauron_cycles * n / own
    node.cycles_softirq_node = max(0.0, node.cycles_softirq - given)


def _share_idle(out: dict[str, SliceEnergy], idle: float, rule: IdleRule) -> None:
    if rule == "none" or idle <= 0 or not out:
        return
    if rule == "equal":
        for e in out.values():
            e.idle_joules = idle / len(out)
        return
    dynamic = sum(e.dynamic_joules for e in out.values())
    if dynamic > 0:
        for e in out.values():
            e.idle_joules = idle * e.dynamic_joules / dynamic


def merge_slice_energy(parts: list[SliceEnergy], seconds: float) -> SliceEnergy:
    """Several intervals as one: amounts summed, rates over the whole span."""
    out = SliceEnergy()
    for p in parts:
        out.cycles_softirq += p.cycles_softirq
        out.cycles_process += p.cycles_process
        out.cycles_bpf += p.cycles_bpf
        out.dynamic_joules += p.dynamic_joules
        out.idle_joules += p.idle_joules
        out.joules += p.joules
        out.packets += p.packets
        out.bytes += p.bytes
        out.n3_octets += p.n3_octets
        out.volume_joules += p.volume_joules
    if parts:
        out.cumulative_joules = parts[-1].cumulative_joules
        out.cumulative_volume_joules = parts[-1].cumulative_volume_joules
    out.watts = out.joules / seconds if seconds > 0 else 0.0
    out.joules_per_gb = out.joules / (out.bytes / 1e9) if out.bytes else None
    out.microjoules_per_packet = out.joules * 1e6 / out.packets if out.packets else None
    return out


#: the node's work over an interval, in the order the records show it: what
#: adds up across intervals (merge_node_energy) beside the joules
NODE_WORK_FIELDS = (
    "busy_cycles",
    "stolen_seconds",
    "unmeasured_seconds",
    "cycles_softirq",
    "cycles_softirq_node",
    "cycles_softirq_sauron_links",
    "cycles_softirq_other_links",
    "cycles_softirq_unowned",
    "softirq_packets",
    "softirq_packets_sauron",
    "cycles_process",
)
#: the rest that adds up: the programs' and the observer's cycles, joules
NODE_ENERGY_FIELDS = (
    "cycles_bpf",
    "cycles_observer",
    "dynamic_joules",
    "idle_joules",
    "joules",
    "attributed_joules",
    "unattributed_joules",
)


def merge_node_energy(parts: list[NodeEnergy], seconds: float) -> NodeEnergy:
    last = parts[-1]
    out = NodeEnergy(
        method=last.method,
        energy_source=last.energy_source,
        profile=last.profile,
        profile_reason=last.profile_reason,
        cycle_source=last.cycle_source,
        idle_rule=last.idle_rule,
        cpus=last.cpus,
        notes=list(last.notes),
        cumulative_joules=last.cumulative_joules,
    )
    for p in parts:
        for name in NODE_WORK_FIELDS + NODE_ENERGY_FIELDS:
            setattr(out, name, getattr(out, name) + getattr(p, name))
        out.capped = out.capped or p.capped
    n = len(parts)
    out.frequency_mhz = sum(p.frequency_mhz for p in parts) / n
    out.busy_ratio = sum(p.busy_ratio for p in parts) / n
    out.joules_per_gigacycle = (
        out.dynamic_joules / out.busy_cycles * 1e9 if out.busy_cycles else last.joules_per_gigacycle
    )
    out.watts = out.joules / seconds if seconds > 0 else 0.0
    return out
