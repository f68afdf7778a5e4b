"""The kernel's softirq threads (`ksoftirqd/N`), one per CPU. Packet work the kernel cannot finish at once
(a busy CPU's receive and transmit softirqs) is deferred to them, and they
wait on those CPUs' run queues like the functions' own threads: a CPU hog
beside a UPF delays its packets through both. A diagnosis watches them
beside the functions, so that such a wait is named, with who held the CPU,
instead of being left to the time inside the UPF. Every CPU's is watched
(the lowest CPUs first when there are more than the probe has room for),
not only those of the CPUs the functions may use now: the set stays the
same when a function is pinned elsewhere."""

from __future__ import annotations

import os
from pathlib import Path

PREFIX = "ksoftirqd/"


def softirq_threads(limit: int, proc: Path = Path("/proc")) -> dict[int, str]:
    """{pid: "ksoftirqd/N"}, the lowest CPUs first, at most `limit` of them."""
    if limit <= 0:
        return {}
    found: dict[int, str] = {}
    for pid in os.listdir(proc):
        if not pid.isdigit():
            continue
        try:
            comm = (proc / pid / "comm").read_text().strip()
        except OSError:
            continue
        if comm.startswith(PREFIX) and comm.removeprefix(PREFIX).isdigit():
            found[int(pid)] = comm
    chosen = sorted(found.items(), key=lambda item: int(item[1].removeprefix(PREFIX)))[:limit]
    return dict(chosen)
