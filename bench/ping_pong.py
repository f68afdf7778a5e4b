"""A workload that wakes and switches all the time: a byte back and forth
over two pipes between this process and a forked worker pinned to one CPU,
each round trip two wakeups and two context switches. What the energy and
the diagnosis probes cost per switch is measured on it."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def pinned(cpu: int) -> Iterator[None]:
    """This process on `cpu` only, as it was after."""
    was = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, was)


def pipe_ping_pong(
    round_trips: int, cpu: int, watch: Callable[[int], None] = lambda pid: None
) -> float:
    """Nanoseconds per round trip; `watch(pid)` hears the worker before the
    first byte."""
    to_worker, from_parent = os.pipe()
    to_parent, from_worker = os.pipe()
    with pinned(cpu):
        pid = os.fork()
        if pid == 0:
            for _ in range(round_trips):
                os.read(to_worker, 1)
                os.write(from_worker, b"x")
            os._exit(0)
        watch(pid)
        started = time.perf_counter_ns()
        for _ in range(round_trips):
            os.write(from_parent, b"x")
            os.read(to_parent, 1)
        elapsed = time.perf_counter_ns() - started
        os.waitpid(pid, 0)
    for fd in (to_worker, from_parent, to_parent, from_worker):
        os.close(fd)
    return elapsed / round_trips
