"""Which processes are watched: the configuration's entries (by name, pid or
cgroup) resolved to the kernel's ids each interval, so processes that start
later are found and those that end are dropped."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator


class WatchEntry(BaseModel):
    """One network function: a process name (its comm or the base name of
    its first argument), a process id, or a cgroup (a path on the cgroup v2
    hierarchy; every cgroup below it too; the kernel names a task's cgroup
    only there). With `slice` its time belongs to that slice (one UPF per
    slice, the usual Open5GS layout); without, it is shared by the slices in
    proportion to the packets Sauron saw of each."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: a process name: its comm or the base name of its first argument
    name: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    #: a process id
    pid: Annotated[int, Field(ge=1)] | None = None
    #: a cgroup v2 path, every cgroup below it included
    cgroup: Path | None = None
    #: the slice its time belongs to; none: shared by packets seen
    slice: str | None = None

    @model_validator(mode="after")
    def _one_selector(self) -> WatchEntry:
        given = [k for k in ("name", "pid", "cgroup") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of name, pid, cgroup")
        return self

    def describe(self) -> str:
        if self.name is not None:
            return f"name {self.name}"
        if self.pid is not None:
            return f"pid {self.pid}"
        return f"cgroup {self.cgroup}"


@dataclass(frozen=True)
class Resolved:
    """Kernel ids of the watched entries, by watch index (= entry position)."""

    tgids: dict[int, int]  # tgid -> index
    cgroups: dict[int, int]  # cgroup id -> index
    found: dict[int, int]  # index -> processes or cgroups found


def _process_names(proc: Path, pid: str) -> tuple[str, str]:
    """(comm, base name of argv[0]) of a process; empty when it is gone."""
    try:
        comm = (proc / pid / "comm").read_text().strip()
        argv0 = (proc / pid / "cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
    except OSError:
        return "", ""
    return comm, os.path.basename(argv0)


def _cgroup_ids(root: Path) -> list[int]:
    """The cgroup v2 id (the directory's inode) of root and every cgroup below."""
    ids: list[int] = []
    for current, _dirs, _files in os.walk(root):
        try:
            ids.append(os.stat(current).st_ino)
        except OSError:
            continue
    return ids


def cgroup2_mounts(mounts: Path = Path("/proc/mounts")) -> list[Path]:
    """Where cgroup v2 is mounted (/sys/fs/cgroup, or .../unified on hybrid hosts)."""
    try:
        lines = mounts.read_text().splitlines()
    except OSError:
        return []
    return [
        Path(f[1]) for f in (line.split() for line in lines) if len(f) > 2 and f[2] == "cgroup2"
    ]


def on_cgroup2(path: Path) -> bool:
    resolved = path.resolve()
    return any(resolved == m or m in resolved.parents for m in cgroup2_mounts())


def resolve(entries: list[WatchEntry], proc: Path = Path("/proc")) -> Resolved:
    tgids: dict[int, int] = {}
    cgroups: dict[int, int] = {}
    found = dict.fromkeys(range(len(entries)), 0)
    by_name = {e.name: i for i, e in enumerate(entries) if e.name is not None}
    if by_name:
        for pid in os.listdir(proc):
            if not pid.isdigit():
                continue
            for name in _process_names(proc, pid):
                index = by_name.get(name)
                if index is not None and int(pid) not in tgids:
                    tgids[int(pid)] = index
                    found[index] += 1
                    break
    for index, entry in enumerate(entries):
        if entry.pid is not None and (proc / str(entry.pid)).exists():
            tgids[entry.pid] = index
            found[index] += 1
        elif entry.cgroup is not None and entry.cgroup.is_dir() and on_cgroup2(entry.cgroup):
            for cgroup_id in _cgroup_ids(entry.cgroup):
                cgroups[cgroup_id] = index
                found[index] += 1
    return Resolved(tgids, cgroups, found)
