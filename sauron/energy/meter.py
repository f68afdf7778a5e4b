"""The energy estimator as the KPI engine sees it: each interval, read the
probe, the data-plane programs' run time, the frequency and the power
source, and give every slice of the snapshot its energy."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sauron.abi import energy_layout, layout
from sauron.bpf import libbpf
from sauron.bpf.maps import DataPlaneCounters, delta
from sauron.catalog import Catalog
from sauron.energy import rapl
from sauron.energy.frequency import HW_COUNTER, FrequencySource
from sauron.energy.kernel_config import kernel_option
from sauron.energy.model import (
    IdleRule,
    IntervalWork,
    NodeEnergy,
    SliceEnergy,
    attribute,
    profile_power,
    rapl_power,
)
from sauron.energy.probe import CpuTimes, EnergyProbe
from sauron.energy.profiles import PowerProfile, choose_profile, cpu_model_name, load_profiles
from sauron.energy.steal import StealClock, kept_share, without_steal
from sauron.energy.units import Cycles, Seconds
from sauron.energy.watch import WatchEntry, resolve
from sauron.host.cpus import online_cpus

log = logging.getLogger(__name__)


class EnergyUnavailable(RuntimeError):
    """The estimator cannot run here; the reason says why."""


@dataclass
class EnergySetup:
    """What the estimator found on the machine, decided once at start."""

    profile: PowerProfile
    profile_reason: str
    counter: rapl.EnergyCounter | None
    rapl_absent: str
    frequency: FrequencySource
    #: the kernel leaves interrupt time out of a task's run time
    #: (CONFIG_IRQ_TIME_ACCOUNTING): the packet softirqs a watched process
    #: ran are added to it
    irq_time_apart: bool = False
    notes: list[str] = field(default_factory=list)


def detect_setup(
    profile_name: str | None = None,
    profiles_dir: Path | None = None,
    powercap: Path = rapl.POWERCAP,
    perf_power: Path = rapl.PERF_POWER,
    cpuinfo: Path = Path("/proc/cpuinfo"),
    cpus: int | None = None,
    kernel_config: list[Path] | None = None,
) -> EnergySetup:
    profiles = load_profiles(profiles_dir)
    profile, reason = choose_profile(profiles, cpu_model_name(cpuinfo), profile_name)
    counter, rapl_absent = rapl.detect(powercap, perf_power)
    frequency = FrequencySource(cpus or libbpf.possible_cpus(), cpuinfo=cpuinfo)
    notes = [
        "packet softirq time: the slices get the stack's work on packets received on "
        "Sauron's links and, of the work no packet owns, that work's share of all "
        "packets' work; split among the slices by their packets on each CPU; the rest "
        "is the node's (other traffic)",
        "shared processes split by each slice's share of the packets Sauron's programs handled",
        "BPF run time is part of the softirq and process time it ran in: shown per slice, "
        "counted once",
    ]
    if frequency.source != HW_COUNTER:
        notes.append(
            f"cycles = on-CPU time x clock frequency ({frequency.source}): "
            f"{frequency.hardware_absent or 'no hardware cycle counter'}"
        )
    if counter is None:
        notes.append(f"no RAPL energy counters ({rapl_absent}): joules from profile {profile.name}")
    else:
        notes.append(f"joules per cycle calibrated each interval from {counter.source}")
    irq_apart, said_by = kernel_option("CONFIG_IRQ_TIME_ACCOUNTING", kernel_config)
    if irq_apart is None:
        notes.append(
            f"kernel configuration unreadable ({said_by}): a watched process's run time is "
            "taken to include the packet softirqs it ran"
        )
    elif irq_apart:
        notes.append(
            f"interrupt time accounted apart ({said_by}): the packet softirqs a watched "
            "process ran are added to its run time"
        )
    notes.append("watched processes: run time as the scheduler accounts it (sched_stat_runtime)")
    return EnergySetup(profile, reason, counter, rapl_absent, frequency, bool(irq_apart), notes)


class EnergyMeter:
    def __init__(
        self,
        catalog: Catalog,
        probe: EnergyProbe,
        setup: EnergySetup,
        program_fds: dict[int, list[int]],
        watch: list[WatchEntry] | None = None,
        idle_rule: IdleRule = "none",
        proc: Path = Path("/proc"),
        clock: Callable[[], int] = time.monotonic_ns,
        receiving_links: set[tuple[int, int]] | None = None,
    ) -> None:
        self.catalog = catalog
        self.probe = probe
        probe.receive_on(receiving_links or set())
        self.setup = setup
        self.program_fds = program_fds
        self.watch = list(watch or [])
        for i, entry in enumerate(self.watch):
            if entry.slice is not None and catalog.get(entry.slice) is None:
                raise EnergyUnavailable(
                    f"energy.watch.{i}.slice: no slice {entry.slice!r} in the catalog"
                )
        if len(self.watch) > energy_layout.MAX_WATCHED:
            raise EnergyUnavailable(f"energy.watch: at most {energy_layout.MAX_WATCHED} entries")
        self.idle_rule: IdleRule = idle_rule
        self.proc = proc
        self.clock = clock
        self.found: dict[int, int] = {}
        #: CPUs that can count busy time (offline ones stay idle, unread)
        self.online = online_cpus()
        self.cumulative: dict[str, float] = {}
        self.node_cumulative = 0.0
        self.refresh_watches()
        self._times = probe.read()
        self.steal = StealClock(self._times.cpus, proc / "stat")
        self._stolen = self.steal.read()
        self._programs = self._program_ns()
        self._observer = self._observer_ns()
        self._at = clock()
        if setup.counter is not None:
            setup.counter.energy()  # start the interval

    def refresh_watches(self) -> None:
        resolved = resolve(self.watch, self.proc)
        self.probe.watch_tgids(resolved.tgids)
        self.probe.watch_cgroups(resolved.cgroups)
        self.found = resolved.found

    def _program_ns(self) -> dict[int, int]:
        return {
            point: sum(libbpf.program_run_stats(fd).run_time_ns for fd in fds)
            for point, fds in self.program_fds.items()
        }

    def _observer_ns(self) -> int:
        return sum(s.run_time_ns for s in self.probe.own_programs())

    def _work(
        self,
        times: CpuTimes,
        stolen_now: list[int] | None,
        seconds_ns: int,
        programs: dict[int, int],
        observer: int,
        before: DataPlaneCounters,
        now: DataPlaneCounters,
        traffic: dict[str, tuple[int, int]],
    ) -> IntervalWork:
        was = self._times

        def grown(now_ns: list[int], before_ns: list[int]) -> list[int]:
            return [delta(n, b) for n, b in zip(now_ns, before_ns, strict=True)]

        stolen = [0] * times.cpus
        if stolen_now is not None and self._stolen is not None:
            stolen = grown(stolen_now, self._stolen)
        timed = []
        for cpu in range(times.cpus):
            if self.online is not None and cpu not in self.online:
                timed.append(0)  # offline: stays idle, unread
                continue
            timed.append(max(0, seconds_ns - delta(times.idle_ns[cpu], was.idle_ns[cpu])))
        busy, stolen, kept = without_steal(timed, stolen)

        # the packet softirqs a watched process ran are its own, not shared
        softirq = grown(times.softirq_ns(), was.softirq_ns())
        in_context: dict[int, list[int]] = {}
        # every index is read (a slot freed by a watch entry still counts as in-context)
        for index, ns in times.watched_softirq_ns.items():
            in_context[index] = grown(ns, was.watched_softirq_ns.get(index, ns))
            softirq = [max(0, s - c) for s, c in zip(softirq, in_context[index], strict=True)]
        softirq = kept_share(softirq, kept)
        watched = {}
        for index, ns in times.watched_run_ns.items():
            if index >= len(self.watch):
                continue
            run = grown(ns, was.watched_run_ns.get(index, ns))
            if self.setup.irq_time_apart:
                run = [r + c for r, c in zip(run, kept_share(in_context[index], kept), strict=True)]
            watched[index] = run
        received = self._received(before, now, times.cpus)
        sauron_rx_ns = grown(times.sauron_rx_ns, was.sauron_rx_ns)
        other_rx_ns = grown(times.other_rx_ns, was.other_rx_ns)
        sauron_rx_packets = grown(times.sauron_rx_packets, was.sauron_rx_packets)
        rx_packets = [
            s + grown_other
            for s, grown_other in zip(
                sauron_rx_packets, grown(times.other_rx_packets, was.other_rx_packets), strict=True
            )
        ]
        packets: dict[int, dict[str, int]] = {}
        for point in self.program_fds:
            per_slice: dict[str, int] = {}
            for sid, name in self._slice_ids():
                n = 0
                for d in range(layout.DIRS):
                    n += delta(
                        now.slice(point, sid, d).packets, before.slice(point, sid, d).packets
                    )
                per_slice[name] = n
            packets[point] = per_slice
        return IntervalWork(
            seconds=Seconds(seconds_ns / 1e9),
            busy_ns=busy,
            stolen_ns=stolen,
            softirq_ns=softirq,
            sauron_rx_ns=kept_share(sauron_rx_ns, kept),
            other_rx_ns=kept_share(other_rx_ns, kept),
            sauron_rx_packets=sauron_rx_packets,
            rx_packets=rx_packets,
            received=received,
            watched_ns=watched,
            watch_slice={i: e.slice for i, e in enumerate(self.watch) if e.slice is not None},
            program_ns={p: delta(ns, self._programs.get(p, 0)) for p, ns in programs.items()},
            observer_ns=delta(observer, self._observer),
            packets=packets,
            traffic=traffic,
        )

    def _received(
        self, before: DataPlaneCounters, now: DataPlaneCounters, cpus: int
    ) -> list[dict[str, int]]:
        """Per CPU, slice -> packets the receiving programs handled."""
        grown = now.received_per_cpu
        if before.received_per_cpu.shape == grown.shape:
            went_down = grown < before.received_per_cpu  # reset: counts from zero
            grown = np.where(went_down, grown, grown - before.received_per_cpu)
        out: list[dict[str, int]] = []
        for cpu in range(cpus):
            row = grown[cpu] if cpu < grown.shape[0] else np.zeros(0, np.uint64)
            out.append({name: int(row[sid]) for sid, name in self._slice_ids() if sid < len(row)})
        return out

    def _slice_ids(self) -> list[tuple[int, str]]:
        return [(0, self.catalog.name_of(0))] + [(s.id, s.name) for s in self.catalog.slices]

    def measure(
        self,
        before: DataPlaneCounters,
        now: DataPlaneCounters,
        traffic: dict[str, tuple[int, int]],
    ) -> tuple[NodeEnergy, dict[str, SliceEnergy]]:
        """The interval since the previous call (or construction)."""
        times, at, stolen = self.probe.read(), self.clock(), self.steal.read()
        programs, observer = self._program_ns(), self._observer_ns()
        span_ns = max(1, at - self._at)
        work = self._work(times, stolen, span_ns, programs, observer, before, now, traffic)
        setup = self.setup
        frequencies = setup.frequency.frequencies(work.busy_ns)
        busy_cycles = Cycles(
            sum(ns * hz / 1e9 for ns, hz in zip(work.busy_ns, frequencies.per_cpu, strict=False))
        )
        if setup.counter is not None:
            power = rapl_power(
                setup.counter.energy(),
                setup.counter.method,
                setup.counter.source,
                setup.profile,
                setup.counter.packages(),
                busy_cycles,
                work.seconds,
            )
        else:
            power = profile_power(setup.profile, busy_cycles, len(work.busy_ns), work.seconds)
        names = [name for _, name in self._slice_ids()]
        node, slices = attribute(work, frequencies, power, names, self.idle_rule)
        node.profile = setup.profile.name
        node.profile_reason = setup.profile_reason
        node.notes = [
            *setup.notes,
            self._receive_note(),
            self._steal_note(),
            *self._watch_notes(),
        ]
        for name, e in slices.items():
            self.cumulative[name] = self.cumulative.get(name, 0.0) + e.joules
            e.cumulative_joules = self.cumulative[name]
        self.node_cumulative += node.joules
        node.cumulative_joules = self.node_cumulative
        self._times, self._at, self._programs, self._observer = times, at, programs, observer
        self._stolen = stolen
        self.refresh_watches()  # processes started in the interval count from the next one
        return node, slices

    def _receive_note(self) -> str:
        if self.probe.receivers_unknown:
            return (
                f"received packets not told by their link ({self.probe.receivers_unknown}): "
                "each CPU's packet softirq time split by the share of its received "
                "packets that were Sauron's"
            )
        return (
            "packet softirq time: the stack's work on each received packet timed to its "
            "link (Sauron's or the node's other traffic)"
        )

    def _steal_note(self) -> str:
        if self.steal.absent:
            return f"steal time not read ({self.steal.absent}): a stolen CPU counts as busy"
        return "hypervisor steal time (/proc/stat) taken out of busy and measured time"

    def _watch_notes(self) -> list[str]:
        notes = []
        for i, entry in enumerate(self.watch):
            owner = f"slice {entry.slice}" if entry.slice else "shared by packets"
            notes.append(f"watched {entry.describe()} ({owner}): {self.found.get(i, 0)} found")
        return notes

    def close(self) -> None:
        self.setup.frequency.close()
        if self.setup.counter is not None:
            self.setup.counter.close()
        self.probe.close()
