"""A companion object's pins (sauron.bpf.companions: the energy and the
diagnosis probes), opened by the agent: its programs by function name and
its maps by name, all let go together. The pins themselves stay, for the
next agent."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from sauron.bpf import libbpf
from sauron.bpf.pinned import MAPS, PROGRAMS, PinnedMap


class PinnedCompanion:
    def __init__(
        self, build: Path, what: str, functions: Iterable[str], cleared: Iterable[str] = ()
    ) -> None:
        """Opens the programs of `functions` and clears the maps of
        `cleared` (what an earlier agent left there means nothing now)."""
        if not (build / MAPS).is_dir():
            raise FileNotFoundError(f"no pinned {what} in {build}")
        self.build = build
        self.tables: dict[str, PinnedMap] = {}
        self.programs: dict[str, int] = {}
        try:
            for function in dict.fromkeys(functions):
                self.programs[function] = libbpf.obj_get(str(build / PROGRAMS / function))
            for name in cleared:
                self.table(name).clear()
        except BaseException:
            self.close()
            raise

    def table(self, name: str) -> PinnedMap:
        if name not in self.tables:
            self.tables[name] = PinnedMap(self.build / MAPS / name)
        return self.tables[name]

    def close(self) -> None:
        for table in self.tables.values():
            table.close()
        self.tables.clear()
        for fd in self.programs.values():
            os.close(fd)
        self.programs.clear()
