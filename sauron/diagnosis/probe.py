"""The kernel side of a diagnosis: sauron/bpf/c/diagnosis/diagnosis.c on
sched_wakeup(_new), sched_switch, sys_enter/exit and kfree_skb, attached
only while some slice is degraded.

The probe is compiled and pinned by the build process (sauron.bpf.build
--with diagnosis), like the energy probe, with the task_struct offsets it
reads written in; the agent opens the pins once and attaches the programs
through links only its process holds, for as long as a degradation and its
tail last. Detached, no program runs: watching costs nothing until a slice
is degraded. Every figure it keeps only grows; a diagnosis is the
difference of two readings (DiagnosisReading.since)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sauron.abi import diagnosis_layout as dl
from sauron.abi.histogram import Histogram
from sauron.bpf import libbpf
from sauron.bpf.companions import DIAGNOSIS, DIAGNOSIS_TRACEPOINTS
from sauron.bpf.link_calls import raw_tracepoint_open
from sauron.bpf.measurements import LATENCY_WORDS, histogram_of_rows, nonzero_rows, percpu_rows
from sauron.bpf.pinned import PinnedMap
from sauron.bpf.pinned_companion import PinnedCompanion

#: the maps a probe starts from empty when opened: an earlier agent's
#: watches, and the waits it saw begin (their ends would be counted whole)
_RESET_ON_OPEN = ("diag_watched", "diag_runnable", "diag_in_futex", "diag_activation")


@dataclass(frozen=True)
class Culprit:
    """A task that held a CPU when a watched process's run-queue wait ended."""

    tgid: int
    comm: str
    cpu: int
    wait_ns: int
    waits: int


@dataclass
class DiagnosisReading:
    """What the probe counted since it was opened (or, from `since`, between
    two readings), per watch index."""

    #: (watch index, wait kind) -> histogram of the waits' durations
    waits: dict[tuple[int, int], Histogram] = field(default_factory=dict)
    #: watch index -> preemptions, sleeps, wakeups
    tasks: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    #: watch index -> tasks that held the CPU, the longest total wait first
    culprits: dict[int, list[Culprit]] = field(default_factory=dict)
    #: kernel drop reason (enum skb_drop_reason) -> packets dropped, node-wide
    drops: dict[int, int] = field(default_factory=dict)

    def since(self, before: DiagnosisReading) -> DiagnosisReading:
        """What was counted after `before` was read."""
        out = DiagnosisReading()
        for key, h in self.waits.items():
            old = before.waits.get(key)
            delta = h.minus(old) if old is not None else h
            if delta.count:
                out.waits[key] = delta
        for watch, counts in self.tasks.items():
            old_counts = before.tasks.get(watch, (0, 0, 0))
            p, s, w = (a - b for a, b in zip(counts, old_counts, strict=True))
            out.tasks[watch] = (p, s, w)
        for watch, rows in self.culprits.items():
            old_rows = {(c.tgid, c.cpu): c for c in before.culprits.get(watch, [])}
            moved = []
            for c in rows:
                was = old_rows.get((c.tgid, c.cpu))
                wait = c.wait_ns - (was.wait_ns if was else 0)
                waits = c.waits - (was.waits if was else 0)
                if waits > 0:
                    moved.append(Culprit(c.tgid, c.comm, c.cpu, wait, waits))
            out.culprits[watch] = sorted(moved, key=lambda c: -c.wait_ns)
        for reason, n in self.drops.items():
            if n - before.drops.get(reason, 0):
                out.drops[reason] = n - before.drops.get(reason, 0)
        return out


class DiagnosisProbe:
    """with DiagnosisProbe(build) as probe: probe.watch({tgid: 0}); probe.attach(); ...

    `build` is a pinned probe (sauron.bpf.build.pin_companion). Opening it
    attaches nothing; `attach()` and `detach()` bracket a degradation."""

    def __init__(self, build: Path) -> None:
        self.build = build
        self.pins = PinnedCompanion(
            build, "diagnosis probe", (f for _, f in DIAGNOSIS_TRACEPOINTS), _RESET_ON_OPEN
        )
        self._programs = self.pins.programs
        self._links: list[int] = []
        self._watched: dict[int, int] = {}
        config = dl.Config.from_buffer_copy(bytes(self.table("diag_config")[ctypes.c_uint32(0)]))
        #: why waits cannot be timed ("" when they can): the build found no
        #: task_struct offsets or futex numbers for this kernel
        self.waits_unknown = "" if config.known else "the build could not read task_struct's layout"

    def table(self, name: str) -> PinnedMap:
        return self.pins.table(name)

    def __enter__(self) -> DiagnosisProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def attached(self) -> bool:
        return bool(self._links)

    def watch(self, tgids: Mapping[int, int]) -> None:
        """Sets the watched processes: {tgid: watch index}."""
        for index in tgids.values():
            if not 0 <= index < dl.WATCHED:
                raise ValueError(f"watch index {index} outside 0..{dl.WATCHED - 1}")
        table = self.table("diag_watched")
        for tgid in self._watched.keys() - tgids.keys():
            with contextlib.suppress(KeyError):
                del table[ctypes.c_uint32(tgid)]
        for tgid, index in tgids.items():
            table[ctypes.c_uint32(tgid)] = ctypes.c_uint32(index)
        self._watched = dict(tgids)

    def attach(self) -> None:
        """Every program on its tracepoint, until detach()."""
        if self._links:
            return
        try:
            for tracepoint, function in DIAGNOSIS_TRACEPOINTS:
                self._links.append(raw_tracepoint_open(tracepoint, self._programs[function]))
        except BaseException:
            self.detach()
            raise

    def detach(self) -> None:
        """Closes the links: no program runs. Waits begun and not ended are
        forgotten, as their ends will not be seen."""
        for fd in reversed(self._links):
            os.close(fd)
        self._links.clear()
        for name in ("diag_runnable", "diag_in_futex", "diag_activation"):
            self.table(name).clear()

    def read(self) -> DiagnosisReading:
        """Everything counted since the probe was opened."""
        reading = DiagnosisReading()
        _, values, count, ncpu = percpu_rows(
            self.table("diag_waits"), LATENCY_WORDS * 8, dl.WATCHED * dl.WAITS
        )
        used, rows = nonzero_rows(values, count, ncpu, LATENCY_WORDS)
        for index, per_cpu in zip(used.tolist(), rows, strict=True):
            reading.waits[divmod(index, dl.WAITS)] = histogram_of_rows(per_cpu)
        words = ctypes.sizeof(dl.TaskCounts) // 8
        _, values, count, ncpu = percpu_rows(self.table("diag_task"), words * 8, dl.WATCHED)
        used, rows = nonzero_rows(values, count, ncpu, words)
        for index, per_cpu in zip(used.tolist(), rows, strict=True):
            summed = per_cpu.sum(axis=0, dtype=np.uint64).tolist()
            reading.tasks[index] = (summed[0], summed[1], summed[2])
        _, values, count, ncpu = percpu_rows(self.table("diag_drops"), 8, dl.DROP_REASONS)
        used, rows = nonzero_rows(values, count, ncpu, 1)
        for index, per_cpu in zip(used.tolist(), rows, strict=True):
            reading.drops[index] = int(per_cpu.sum(dtype=np.uint64))
        culprits = self.table("diag_culprits")
        key_size, value_size = ctypes.sizeof(dl.CulpritKey), ctypes.sizeof(dl.Culprit)
        keys, values, count = libbpf.lookup_batch(
            culprits.map_fd, key_size, value_size, culprits.max_entries
        )
        for n in range(count):
            key = dl.CulpritKey.from_buffer_copy(keys, n * key_size)
            value = dl.Culprit.from_buffer_copy(values, n * value_size)
            comm = value.comm.decode(errors="replace")
            reading.culprits.setdefault(key.watch, []).append(
                Culprit(key.tgid, comm, key.cpu, value.wait_ns, value.waits)
            )
        for rows_of in reading.culprits.values():
            rows_of.sort(key=lambda c: -c.wait_ns)
        return reading

    def close(self) -> None:
        """Detaches every program (the pins stay, for the next agent)."""
        for fd in reversed(self._links):
            os.close(fd)
        self._links.clear()
        self.pins.close()


@contextlib.contextmanager
def probe_in(folder: Path) -> Iterator[DiagnosisProbe]:
    """A probe built in this process (it loads bcc: for tests and
    benchmarks, never the agent), pinned under `folder`, opened; its pins
    removed after."""
    from sauron.bpf.build import pin_companion

    try:
        with DiagnosisProbe(pin_companion(folder, DIAGNOSIS)) as probe:
            yield probe
    finally:
        shutil.rmtree(folder, ignore_errors=True)
