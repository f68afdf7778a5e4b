"""Processes that contend for one CPU, for the diagnosis tests: a named hog
that never sleeps, and a worker that works 1 ms and sleeps 2 ms like a
packet loop, both pinned to the CPU given."""

from __future__ import annotations

import os
import subprocess
import sys

#: the CPU the tests pin to: the last one this process may use
CPU = sorted(os.sched_getaffinity(0))[-1]

#: named (prctl), pinned to CPU: spins all the time
HOG = (
    "import ctypes, os, sys\n"
    "ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)\n"
    "os.sched_setaffinity(0, {int(sys.argv[2])})\n"
    "while True: pass\n"
)
#: pinned to CPU: works 1 ms, sleeps 2 ms, again and again (a packet loop)
WORKER = (
    "import os, sys, time\n"
    "os.sched_setaffinity(0, {int(sys.argv[1])})\n"
    "while True:\n"
    "    t = time.monotonic()\n"
    "    while time.monotonic() - t < 0.001: pass\n"
    "    time.sleep(0.002)\n"
)


def hog(name: str, cpu: int = CPU) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", HOG, name, str(cpu)])


def worker(cpu: int = CPU) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", WORKER, str(cpu)])
