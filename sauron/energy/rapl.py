"""Measured package energy (RAPL): the powercap sysfs tree, whose counters
wrap at max_energy_range_uj, or the perf `power` PMU. Used only when it
returns non-zero energy: virtual machines often show the files and read 0."""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sauron.energy.units import Joules
from sauron.host.perf_events import perf_event_open

POWERCAP = Path("/sys/class/powercap")
PERF_POWER = Path("/sys/bus/event_source/devices/power")

POWERCAP_METHOD = "rapl powercap"
PERF_METHOD = "rapl perf"

_PACKAGE_ZONE = re.compile(r"^intel-rapl:\d+$")


class EnergyCounter:
    """energy() -> joules since the previous call (the first call: since
    construction); packages() -> how many CPU packages it covers."""

    method = ""
    source = ""

    def energy(self) -> Joules:
        raise NotImplementedError

    def packages(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        pass


@dataclass
class _Zone:
    path: Path
    max_range_uj: int
    last_uj: int


def wrapped_growth(now: int, before: int, max_range: int) -> int:
    """A counter's growth across at most one wrap at max_range."""
    return now - before if now >= before else max_range - before + now


class Powercap(EnergyCounter):
    """The package zones (intel-rapl:N named package-N; AMD's RAPL shows
    there too); sub-zones (core, uncore, dram) are parts of a package and
    are not added again."""

    method = POWERCAP_METHOD

    def __init__(self, root: Path = POWERCAP) -> None:
        self.zones: list[_Zone] = []
        for zone in sorted(root.glob("intel-rapl:*")):
            if not _PACKAGE_ZONE.match(zone.name):
                continue
            try:
                if not (zone / "name").read_text().strip().startswith("package"):
                    continue
                max_range = int((zone / "max_energy_range_uj").read_text())
                now = int((zone / "energy_uj").read_text())
            except (OSError, ValueError):
                continue
            if now > 0:
                self.zones.append(_Zone(zone / "energy_uj", max_range, now))
        if not self.zones:
            raise OSError(f"no powercap package zone with non-zero energy under {root}")
        self.source = ", ".join(str(z.path) for z in self.zones)

    def energy(self) -> Joules:
        total_uj = 0
        for zone in self.zones:
            now = int(zone.path.read_text())
            total_uj += wrapped_growth(now, zone.last_uj, zone.max_range_uj)
            zone.last_uj = now
        return Joules(total_uj / 1e6)

    def packages(self) -> int:
        return len(self.zones)


def _cpu_list(text: str) -> list[int]:
    cpus: list[int] = []
    for part in text.strip().split(","):
        if "-" in part:
            first, last = part.split("-")
            cpus.extend(range(int(first), int(last) + 1))
        elif part:
            cpus.append(int(part))
    return cpus


class PerfPower(EnergyCounter):
    """The perf `power` PMU's energy-pkg event, one counter per package (on
    the CPUs its cpumask names); counts times the event's scale are joules."""

    method = PERF_METHOD

    def __init__(
        self, root: Path = PERF_POWER, opener: Callable[[int, int, int], int] | None = None
    ) -> None:
        def open_counter(type_: int, config: int, cpu: int) -> int:
            return perf_event_open(type_, config, cpu=cpu, pid=-1, enabled=True)

        opener = opener or open_counter
        try:
            pmu_type = int((root / "type").read_text())
            event = (root / "events" / "energy-pkg").read_text().strip()
            self.scale = float((root / "events" / "energy-pkg.scale").read_text())
            cpus = _cpu_list((root / "cpumask").read_text())
        except (OSError, ValueError) as exc:
            raise OSError(f"no perf energy-pkg event under {root}: {exc}") from None
        match = re.search(r"event=(0x[0-9a-fA-F]+|\d+)", event)
        if match is None:
            raise OSError(f"cannot read the energy-pkg event {event!r}")
        config = int(match.group(1), 0)
        self.fds: list[int] = []
        for cpu in cpus:
            fd = opener(pmu_type, config, cpu)
            if fd < 0:
                self.close()
                raise OSError(-fd, f"perf energy-pkg on CPU {cpu}: {os.strerror(-fd)}")
            self.fds.append(fd)
        self.last = self._counts()
        if not any(self.last):
            self.close()
            raise OSError("the perf energy-pkg counters read zero")
        self.source = f"perf power/energy-pkg on CPUs {','.join(map(str, cpus))}"

    def _counts(self) -> list[int]:
        return [struct.unpack("<Q", os.read(fd, 8))[0] for fd in self.fds]

    def energy(self) -> Joules:
        now = self._counts()
        grown = sum(n - b for n, b in zip(now, self.last, strict=True))
        self.last = now
        return Joules(grown * self.scale)

    def packages(self) -> int:
        return len(self.fds)

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []


def detect(
    powercap: Path = POWERCAP, perf_power: Path = PERF_POWER
) -> tuple[EnergyCounter | None, str]:
    """The first RAPL source that returns energy, or None and why none does."""
    reasons: list[str] = []
    for make in (lambda: Powercap(powercap), lambda: PerfPower(perf_power)):
        try:
            return make(), ""
        except OSError as exc:
            reasons.append(str(exc))
    return None, "; ".join(reasons)
