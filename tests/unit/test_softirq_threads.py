"""The kernel's softirq threads a diagnosis watches beside the network
functions, one per CPU, from a folder shaped like /proc, then from this
machine's own."""

from __future__ import annotations

import os
from pathlib import Path

from sauron.diagnosis.softirq_threads import softirq_threads


def process(root: Path, pid: int, comm: str) -> None:
    (root / str(pid)).mkdir()
    (root / str(pid) / "comm").write_text(comm + "\n")


def test_one_per_cpu_the_lowest_first(tmp_path: Path) -> None:
    process(tmp_path, 812, "open5gs-upfd")
    for cpu in (10, 2, 0, 1):
        process(tmp_path, 100 + cpu, f"ksoftirqd/{cpu}")
    process(tmp_path, 90, "kworker/1:0")
    assert softirq_threads(8, tmp_path) == {
        100: "ksoftirqd/0",
        101: "ksoftirqd/1",
        102: "ksoftirqd/2",
        110: "ksoftirqd/10",
    }
    assert softirq_threads(2, tmp_path) == {100: "ksoftirqd/0", 101: "ksoftirqd/1"}
    assert softirq_threads(0, tmp_path) == {}


def test_this_machine_has_one_per_cpu() -> None:
    found = softirq_threads(1024)
    assert len(found) == os.cpu_count()
