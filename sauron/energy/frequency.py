"""Each CPU's clock frequency, from the best source the machine has: the
hardware cycle counter (cycles per busy nanosecond: the real average clock),
else cpufreq's current frequency, else /proc/cpuinfo's "cpu MHz". The
source is named in every energy figure."""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sauron.energy.units import Hertz
from sauron.host.perf_events import PERF_COUNT_HW_CPU_CYCLES, PERF_TYPE_HARDWARE, perf_event_open

HW_COUNTER = "hardware cycle counter"
CPUFREQ = "cpufreq scaling_cur_freq"
CPUINFO = "/proc/cpuinfo cpu MHz"

_CPU_MHZ = re.compile(r"^cpu MHz\s*:\s*([0-9.]+)", re.M)
_PROCESSOR = re.compile(r"^processor\s*:\s*(\d+)", re.M)


@dataclass(frozen=True)
class Frequencies:
    source: str
    per_cpu: list[Hertz]

    def mean(self) -> Hertz:
        return Hertz(sum(self.per_cpu) / len(self.per_cpu)) if self.per_cpu else Hertz(0.0)


def cpuinfo_frequencies(text: str) -> dict[int, Hertz]:
    """{cpu: Hz} from /proc/cpuinfo's text (one block per processor)."""
    out: dict[int, Hertz] = {}
    for block in text.split("\n\n"):
        cpu, mhz = _PROCESSOR.search(block), _CPU_MHZ.search(block)
        if cpu and mhz:
            out[int(cpu.group(1))] = Hertz(float(mhz.group(1)) * 1e6)
    return out


def cpufreq_frequencies(cpu_root: Path, cpus: int) -> dict[int, Hertz]:
    """{cpu: Hz} from /sys/devices/system/cpu/cpuN/cpufreq/scaling_cur_freq (kHz)."""
    out: dict[int, Hertz] = {}
    for cpu in range(cpus):
        path = cpu_root / f"cpu{cpu}" / "cpufreq" / "scaling_cur_freq"
        try:
            out[cpu] = Hertz(int(path.read_text().strip()) * 1e3)
        except (OSError, ValueError):
            continue
    return out


class CycleCounters:
    """Per-CPU hardware cycle counters (perf, counting, not sampling). Each
    reading gives the cycles each CPU ran since the last; the counter stops
    while the CPU is halted, so cycles / busy time is its real clock."""

    def __init__(self, cpus: int, open_counter: Callable[[int], int] | None = None) -> None:
        def hardware_cycles(cpu: int) -> int:
            return perf_event_open(
                PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES, cpu=cpu, pid=-1, enabled=True
            )

        opener = open_counter or hardware_cycles
        self.fds: list[int] = []
        for cpu in range(cpus):
            fd = opener(cpu)
            if fd < 0:
                self.close()
                raise OSError(-fd, f"no hardware cycle counter on CPU {cpu}: {os.strerror(-fd)}")
            self.fds.append(fd)

    def read(self) -> list[int]:
        return [struct.unpack("<Q", os.read(fd, 8))[0] for fd in self.fds]

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []


class FrequencySource:
    """frequencies(busy_ns) -> Frequencies for the interval just ended;
    busy_ns is each CPU's non-idle time over it (the hardware counter needs
    it; the other sources ignore it)."""

    def __init__(
        self,
        cpus: int,
        cpu_root: Path = Path("/sys/devices/system/cpu"),
        cpuinfo: Path = Path("/proc/cpuinfo"),
        counters: CycleCounters | None = None,
        try_hardware: bool = True,
    ) -> None:
        self.cpus = cpus
        self.cpu_root = cpu_root
        self.cpuinfo = cpuinfo
        self.counters = counters
        #: why the hardware counter is not used, when it is not
        self.hardware_absent = ""
        if self.counters is None and try_hardware:
            try:
                self.counters = CycleCounters(cpus)
            except OSError as exc:
                self.hardware_absent = str(exc)
        self._last_cycles = self.counters.read() if self.counters else None
        self._fallback = self._software()

    def _software(self) -> Frequencies:
        cpufreq = cpufreq_frequencies(self.cpu_root, self.cpus)
        if len(cpufreq) == self.cpus:
            return Frequencies(CPUFREQ, [cpufreq[c] for c in range(self.cpus)])
        try:
            info = cpuinfo_frequencies(self.cpuinfo.read_text())
        except OSError:
            info = {}
        if info:
            mean = Hertz(sum(info.values()) / len(info))
            return Frequencies(CPUINFO, [info.get(c, mean) for c in range(self.cpus)])
        raise OSError("no CPU frequency: no hardware counter, no cpufreq, no cpu MHz in cpuinfo")

    @property
    def source(self) -> str:
        return HW_COUNTER if self.counters else self._fallback.source

    def frequencies(self, busy_ns: list[int]) -> Frequencies:
        if self.counters is None or self._last_cycles is None:
            self._fallback = self._software()  # cpufreq moves; read it each interval
            return self._fallback
        now = self.counters.read()
        ran = [n - b for n, b in zip(now, self._last_cycles, strict=True)]
        self._last_cycles = now
        software = self._fallback.per_cpu
        # a CPU that did not run in the interval keeps the nominal figure
        per_cpu = [
            Hertz(c * 1e9 / busy) if busy > 0 and c > 0 else software[i]
            for i, (c, busy) in enumerate(zip(ran, busy_ns, strict=True))
        ]
        return Frequencies(HW_COUNTER, per_cpu)

    def close(self) -> None:
        if self.counters is not None:
            self.counters.close()
