"""Units as types: a value's unit is in its type, so mypy refuses joules
where watts are meant. Conversions live here and nowhere else."""

from __future__ import annotations

from typing import NewType

Nanoseconds = NewType("Nanoseconds", int)
Hertz = NewType("Hertz", float)
Cycles = NewType("Cycles", float)
Joules = NewType("Joules", float)
Watts = NewType("Watts", float)
Seconds = NewType("Seconds", float)

NS_PER_S = 1_000_000_000


def cycles_in(ns: float, hz: Hertz) -> Cycles:
    return Cycles(ns * hz / NS_PER_S)


def watts(energy: Joules, over: Seconds) -> Watts:
    return Watts(energy / over) if over > 0 else Watts(0.0)


def energy_at(power: Watts, over: Seconds) -> Joules:
    return Joules(power * over)
