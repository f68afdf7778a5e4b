"""A diagnosis: the delay or loss factors of a degraded slice, ranked by
their measured contribution to the figure that failed, each with its
evidence and the method that measured it.

Latency (a percentile of transit, RAN or DN time over its limit): each wait
the network functions' threads met is compared with the failing figure at
the same percentile: the run-queue wait (woken, not yet running: the
diagnosis probe, with the task that held the CPU; summed over each
activation, from a wakeup to the next sleep, since a thread preempted while
it works through its packets makes the later ones wait once per
preemption) and the futex wait (their own locks); what is left of the figure once the longest wait is taken out
is the time inside the UPF itself. A factor's share is its figure over the
failing one, at most 1.

Loss (a loss ratio over its limit): the packets lost are split by where:
on the radio side (GTP-U sequence gaps at N3 ingress: they never reached
the UPF), in the kernel before the UPF read them (its socket's receive
buffer full, the receive backlog full, its TUN queue full), inside the UPF
(stamped entering, never seen leaving). A factor's share is its count over
all counted losses.

A packet stamped at the UPF's door and dropped in the kernel on its way in
is counted lost only when its stamp expires, TRANSIT_EXPIRY_S later: the
kernel's counters of a loss diagnosis are read over that look-back
(`Evidence.loss_host`), and the drops on the failing direction's way in
(socket overflows uplink, TUN queue drops downlink) are taken out of the
expired stamps before what is left is charged to the UPF itself.

A slice whose neighbour's load rose above its own baseline while it was
degraded names that neighbour (the noisy neighbour), with its throughput
then and before."""

from __future__ import annotations

from dataclasses import dataclass, field

from sauron.abi import diagnosis_layout as dl
from sauron.abi.histogram import Histogram
from sauron.bpf.measurements import TRANSIT_EXPIRY_S
from sauron.diagnosis.host_counters import HostReading
from sauron.diagnosis.probe import Culprit, DiagnosisReading

NS_PER_MS = 1e6
#: the percentile each latency target names, as the fraction it stands for
QUANTILE_OF = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "p999": 0.999}
#: a neighbour is named when its throughput rose at least this many times
#: above its baseline and carries at least this share of the node's
NEIGHBOUR_RISE = 2.0
NEIGHBOUR_SHARE = 0.5


def loss_lookback_s(interval_s: float) -> float:
    """How far back a loss diagnosis reads the kernel's drops: a stamped
    packet dropped on its way in counts lost once its stamp expired, at the
    first expiry scan after (an interval), in the interval that scan ends,
    and the readings are an interval apart."""
    return TRANSIT_EXPIRY_S + 3 * interval_s


@dataclass(frozen=True)
class Failing:
    """The target that failed: "transit_latency_ms.p99.uplink",
    "max_loss_ratio.sequence.downlink", ...; its limit and value."""

    target: str
    limit: float
    value: float

    @property
    def kind(self) -> str:
        return "loss" if self.target.startswith("max_loss_ratio") else "latency"

    @property
    def quantile(self) -> float:
        """The fraction a latency target's percentile stands for."""
        parts = self.target.split(".")
        return QUANTILE_OF.get(parts[1], 0.99) if len(parts) > 1 else 0.99


@dataclass(frozen=True)
class Losses:
    """Packets lost over the degraded intervals, by where they were counted."""

    #: GTP-U sequence numbers never received at N3 ingress
    radio_side: int = 0
    #: stamped entering the UPF, never seen leaving
    inside_upf: int = 0


@dataclass
class Evidence:
    """What was measured over the degraded intervals and, for the kernel's
    counters and the neighbours, over as many healthy intervals before."""

    #: watch index -> the network function's name and pid ("open5gs-upfd (pid 812)")
    functions: dict[int, str] = field(default_factory=dict)
    #: the diagnosis probe's counts over the degraded intervals; None: the
    #: probe could not be attached, and why
    probe: DiagnosisReading | None = None
    probe_missing: str = ""
    host: HostReading = field(default_factory=HostReading)
    #: the kernel's counters over loss_lookback_s(), for a loss target
    #: (None: `host`)
    loss_host: HostReading | None = None
    baseline_host: HostReading | None = None
    losses: Losses = field(default_factory=Losses)
    #: slice -> (Mbit/s while degraded, Mbit/s before), the diagnosed one included
    throughput: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Factor:
    """One cause, with its share of the failing figure (0-1), the figure
    itself in words, the numbers it rests on and how they were measured."""

    name: str
    share: float
    figure: str
    evidence: dict[str, object]
    method: str


@dataclass(frozen=True)
class Diagnosis:
    slice_name: str
    failing: Failing
    factors: list[Factor]
    #: the one sentence: the failing figure and its first factor
    summary: str
    #: the slice whose load rose meanwhile, and its Mbit/s then and before
    neighbour: tuple[str, float, float] | None = None
    #: what could not be measured, and why
    unmeasured: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Diagnosed:
    """One diagnosis, at the end of the interval it explains (unix s)."""

    time: float
    diagnosis: Diagnosis


def _ms(ns: float) -> float:
    return ns / NS_PER_MS


def _at(h: Histogram, q: float) -> float | None:
    estimate = h.percentile(q)
    return None if estimate is None else estimate.value


def _top_culprit(culprits: list[Culprit], total_ns: int) -> dict[str, object] | None:
    if not culprits or total_ns <= 0:
        return None
    top = culprits[0]
    return {
        "comm": top.comm or "(idle)",
        "pid": top.tgid,
        "cpu": top.cpu,
        "share_of_wait": round(top.wait_ns / total_ns, 3),
    }


def _latency_factors(failing: Failing, ev: Evidence, unmeasured: list[str]) -> list[Factor]:
    factors: list[Factor] = []
    q = failing.quantile
    figure_ms = failing.value
    longest_ms = 0.0
    if ev.probe is None:
        unmeasured.append(f"run-queue and futex waits: {ev.probe_missing or 'no probe'}")
    else:
        for (watch, kind), h in sorted(ev.probe.waits.items()):
            if kind == dl.WAIT_ACTIVATION:
                continue  # the run-queue wait's own figure, below
            # a packet handled late in an activation waited for every
            # preemption before it too: the run-queue wait at the
            # percentile is that of whole activations, when measured
            summed = ev.probe.waits.get((watch, dl.WAIT_ACTIVATION))
            per = summed if kind == dl.WAIT_RUNQUEUE and summed is not None else h
            at = _at(per, q)
            if at is None:
                continue
            wait_ms = _ms(at)
            who = ev.functions.get(watch, f"watch {watch}")
            evidence: dict[str, object] = {
                "function": who,
                "waits": h.count,
                "mean_ms": round(_ms(h.total / h.count), 3),
                "total_ms": round(_ms(h.total), 3),
                f"p{q * 100:g}_ms": round(wait_ms, 3),
            }
            if kind == dl.WAIT_RUNQUEUE:
                name, what = "run_queue_wait", "run-queue wait"
                culprit = _top_culprit(ev.probe.culprits.get(watch, []), h.total)
                if culprit is not None:
                    evidence["held_by"] = culprit
                preemptions = ev.probe.tasks.get(watch, (0, 0, 0))[0]
                evidence["preemptions"] = preemptions
                method = "sched_wakeup/sched_switch: wakeup or preemption until running"
                if per is summed:
                    evidence["activations"] = summed.count
                    what = "run-queue wait per activation"
                    method += ", summed from each wakeup to the next sleep"
            else:
                name, what = "futex_wait", "futex wait"
                method = "sys_enter/sys_exit of futex calls"
            longest_ms = max(longest_ms, wait_ms)
            factors.append(
                Factor(
                    name,
                    min(1.0, wait_ms / figure_ms) if figure_ms > 0 else 0.0,
                    f"{what} p{q * 100:g} {wait_ms:.2f} ms in {who}",
                    evidence,
                    method,
                )
            )
    if ev.probe is not None and figure_ms > 0:
        inside = max(0.0, figure_ms - longest_ms)
        factors.append(
            Factor(
                "inside_upf",
                inside / figure_ms,
                f"{inside:.2f} ms inside the UPF once its longest wait is taken out",
                {"figure_ms": figure_ms, "longest_wait_ms": round(longest_ms, 3)},
                "the failing percentile minus the longest wait at the same percentile",
            )
        )
    return factors


#: a CPU-wide factor below this share of the interval's time is not named
CPU_FACTOR_FLOOR = 0.01


def _fraction(host: HostReading | None, part: str) -> float | None:
    if host is None or not host.cpu:
        return None
    total = sum(c.total for c in host.cpu)
    return sum(getattr(c, part) for c in host.cpu) / total if total > 0 else None


def _cpu_factors(ev: Evidence) -> list[Factor]:
    """What slowed every CPU down in the degraded interval: time the
    hypervisor stole, time in packet softirqs above the baseline's, a clock
    below the baseline's. Each one's share is the part of the CPUs' time it
    took (or, for the clock, how much slower it ran): the part of a
    network function's time it could have cost."""
    factors: list[Factor] = []
    steal, steal_before = _fraction(ev.host, "steal"), _fraction(ev.baseline_host, "steal")
    if steal is not None and steal >= CPU_FACTOR_FLOOR:
        factors.append(
            Factor(
                "hypervisor_steal",
                min(1.0, steal),
                f"{steal * 100:.1f} % of the CPUs' time stolen by the hypervisor"
                + (f" (before: {steal_before * 100:.1f} %)" if steal_before is not None else ""),
                {"steal_ratio": round(steal, 4), "baseline_ratio": steal_before},
                "/proc/stat steal, every CPU",
            )
        )
    softirq, softirq_before = _fraction(ev.host, "softirq"), _fraction(ev.baseline_host, "softirq")
    if softirq is not None:
        above = softirq - (softirq_before or 0.0)
        if above >= CPU_FACTOR_FLOOR:
            squeezed = sum(s.squeezed for s in ev.host.softnet)
            factors.append(
                Factor(
                    "softirq_time",
                    min(1.0, above),
                    f"{softirq * 100:.1f} % of the CPUs' time in softirqs, "
                    f"{above * 100:.1f} points above before; {squeezed} squeezes",
                    {
                        "softirq_ratio": round(softirq, 4),
                        "baseline_ratio": softirq_before,
                        "squeezes": squeezed,
                    },
                    "/proc/stat softirq, every CPU; /proc/net/softnet_stat time squeezed",
                )
            )
    now = ev.host.mhz
    before = ev.baseline_host.mhz if ev.baseline_host is not None else []
    if now and before:
        mean_now, mean_before = sum(now) / len(now), sum(before) / len(before)
        slower = 1 - mean_now / mean_before if mean_before > 0 else 0.0
        if slower >= CPU_FACTOR_FLOOR:
            factors.append(
                Factor(
                    "cpu_frequency",
                    min(1.0, slower),
                    f"the CPUs at {mean_now:.0f} MHz, {slower * 100:.0f} % slower than "
                    f"{mean_before:.0f} MHz before",
                    {"mhz": round(mean_now, 1), "baseline_mhz": round(mean_before, 1)},
                    "/proc/cpuinfo cpu MHz, every CPU",
                )
            )
    return factors


def _loss_factors(failing: Failing, ev: Evidence) -> list[Factor]:
    host = ev.loss_host if ev.loss_host is not None else ev.host
    rcvbuf = sum(u.rcvbuf_errors for u in host.udp.values())
    backlog = sum(s.dropped for s in host.softnet)
    tun = sum(d.tx_dropped for d in host.links.values())
    # the kernel's drops after the door's stamp, in the failing direction:
    # their stamps expired too, and they are not the UPF's own
    on_the_way_in = tun if failing.target.endswith(".downlink") else rcvbuf
    inside = max(0, ev.losses.inside_upf - on_the_way_in)
    counts = {
        "radio_side": (
            ev.losses.radio_side,
            "GTP-U sequence gaps at N3 ingress: lost before the UPF",
            "sequence numbers never received, per tunnel",
        ),
        "socket_overflow": (
            rcvbuf,
            "datagrams refused by the UPF's full socket receive buffer",
            "/proc/PID/net/snmp Udp RcvbufErrors in the UPF's namespace",
        ),
        "backlog_drops": (
            backlog,
            "packets dropped from a full receive backlog",
            "/proc/net/softnet_stat dropped, per CPU",
        ),
        "tun_drops": (
            tun,
            "packets the kernel could not queue to the UPF's TUN device",
            "/proc/PID/net/dev tx_dropped of the UPF's TUN devices",
        ),
        "inside_upf": (
            inside,
            "packets that entered the UPF and never left",
            "transit stamps expired unmatched, less the kernel's drops on the way in",
        ),
    }
    total = sum(n for n, _, _ in counts.values())
    if total == 0:
        return []
    return [
        Factor(name, n / total, f"{n} {what}", {"packets": n}, method)
        for name, (n, what, method) in counts.items()
        if n
    ]


def _neighbour(slice_name: str, ev: Evidence) -> tuple[str, float, float] | None:
    node_now = sum(now for now, _ in ev.throughput.values())
    best = None
    for name, (now, before) in ev.throughput.items():
        if name == slice_name or node_now <= 0:
            continue
        rose = now >= NEIGHBOUR_RISE * max(before, 1e-9)
        if rose and now / node_now >= NEIGHBOUR_SHARE and (best is None or now > best[1]):
            best = (name, now, before)
    return best


def diagnose(slice_name: str, failing: Failing, ev: Evidence) -> Diagnosis:
    """The factors of one failing target, most contributing first."""
    unmeasured: list[str] = []
    if failing.kind == "latency":
        factors = _latency_factors(failing, ev, unmeasured) + _cpu_factors(ev)
        head = (
            f"{failing.target.split('.')[0]} {failing.target.split('.')[1]} {failing.value:.2f} ms"
        )
    else:
        factors = _loss_factors(failing, ev)
        head = f"loss {failing.value * 100:.2f} %"
    factors.sort(key=lambda f: -f.share)
    neighbour = _neighbour(slice_name, ev)
    summary = f"{slice_name}: {head}"
    if factors:
        first = factors[0]
        summary += f", of which {first.figure} ({first.share * 100:.0f} %)"
        held = first.evidence.get("held_by")
        if isinstance(held, dict):
            summary += f": waited on CPU {held['cpu']} behind {held['comm']} (pid {held['pid']})"
    else:
        summary += ": no factor measured"
    if neighbour is not None:
        summary += (
            f", while {neighbour[0]} carried {neighbour[1]:.0f} Mbit/s (before: {neighbour[2]:.0f})"
        )
    return Diagnosis(slice_name, failing, factors, summary, neighbour, unmeasured)
