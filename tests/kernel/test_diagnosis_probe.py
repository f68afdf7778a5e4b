"""The diagnosis probe in the kernel: sauron/bpf/c/diagnosis/diagnosis.c on
sched_wakeup, sched_switch, sys_enter/exit and kfree_skb. A watched process
sharing its CPU with a hog waits in the run queue as long as the
scheduler's own account says (/proc/PID/schedstat's run delay), and the
wait is charged to the hog, named; futex waits of known length are timed;
datagrams to a port nobody listens on are counted under the kernel's own
drop reason; a detached probe counts nothing. The probe is the agent's:
built and pinned apart, opened from its pins, attached on demand."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cpu_contention import CPU
from cpu_contention import hog as start_hog
from cpu_contention import worker as worker_on

from sauron.abi import diagnosis_layout as dl
from sauron.diagnosis.drop_reasons import drop_reason_names
from sauron.diagnosis.probe import DiagnosisProbe, DiagnosisReading, probe_in

pytestmark = [pytest.mark.kernel]

PINS = Path("/sys/fs/bpf")
#: two threads: the main one waits on an event 20 ms at a time (a futex wait)
WAITER = "import threading\nstop = threading.Event()\nwhile True: stop.wait(0.02)\n"


@pytest.fixture(scope="module")
def probe() -> Iterator[DiagnosisProbe]:
    with probe_in(PINS / f"sauron-test-diagnosis-{os.getpid()}") as p:
        yield p


def run_delay_ns(pid: int) -> int:
    """The scheduler's account of the time the process's threads waited on
    a run queue (the second field of schedstat)."""
    return sum(
        int(Path(f"/proc/{pid}/task/{t}/schedstat").read_text().split()[1])
        for t in os.listdir(f"/proc/{pid}/task")
    )


def python(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", *args])


def over(probe: DiagnosisProbe, seconds: float) -> DiagnosisReading:
    before = probe.read()
    time.sleep(seconds)
    return probe.read().since(before)


def test_run_queue_wait_is_the_schedulers_and_names_the_hog(probe: DiagnosisProbe) -> None:
    name = f"hog-{uuid.uuid4().hex[:8]}"
    worker = worker_on()
    hog = start_hog(name)
    try:
        time.sleep(0.5)  # both pinned and running
        probe.watch({worker.pid: 3})
        probe.attach()
        time.sleep(0.2)
        truth_before = run_delay_ns(worker.pid)
        seen = over(probe, 2.0)
        truth = run_delay_ns(worker.pid) - truth_before
    finally:
        probe.detach()
        probe.watch({})
        for p in (hog, worker):
            p.kill()
            p.wait()
    waited = seen.waits[(3, dl.WAIT_RUNQUEUE)]
    assert waited.count > 100  # it woke every ~3 ms and had to wait for the CPU
    # the scheduler's own account of the same waits, up to the moments
    # each side is read (one wait at most at each end)
    assert abs(waited.total - truth) <= 0.05 * truth + 2 * waited.maximum, (waited.total, truth)
    # the CPU was held by the hog: it comes first, named, on the pinned CPU
    top = seen.culprits[3][0]
    assert (top.tgid, top.comm, top.cpu) == (hog.pid, name, CPU)
    assert top.wait_ns > 0.8 * waited.total
    _, sleeps, wakeups = seen.tasks[3]
    assert wakeups > 100 and sleeps > 100
    # summed per activation (wakeup to sleep): the same waits, one sum for
    # each sleep (an activation still going at either reading excepted)
    summed = seen.waits[(3, dl.WAIT_ACTIVATION)]
    assert abs(summed.count - sleeps) <= 2
    assert abs(summed.total - waited.total) <= 2 * summed.maximum


def test_two_spinning_processes_on_one_cpu_preempt_each_other(probe: DiagnosisProbe) -> None:
    """Neither sleeps: each runs until the scheduler takes the CPU from it,
    still runnable, and waits in the run queue from that moment."""
    first = start_hog(f"spin-{uuid.uuid4().hex[:8]}")
    second = start_hog(f"spin-{uuid.uuid4().hex[:8]}")
    try:
        time.sleep(0.3)
        probe.watch({first.pid: 9})
        probe.attach()
        seen = over(probe, 0.5)
    finally:
        probe.detach()
        probe.watch({})
        for p in (first, second):
            p.kill()
            p.wait()
    preemptions, sleeps, _ = seen.tasks[9]
    assert preemptions > 10 and sleeps == 0
    waited = seen.waits[(9, dl.WAIT_RUNQUEUE)]
    assert waited.count >= preemptions - 2  # each preemption's wait ends when it runs again
    assert seen.culprits[9][0].tgid == second.pid


def test_futex_waits_are_timed(probe: DiagnosisProbe) -> None:
    waiter = python(WAITER)
    try:
        time.sleep(0.3)
        probe.watch({waiter.pid: 5})
        probe.attach()
        seen = over(probe, 1.0)
    finally:
        probe.detach()
        probe.watch({})
        waiter.kill()
        waiter.wait()
    futex = seen.waits[(5, dl.WAIT_FUTEX)]
    # ~50 waits of 20 ms in a second (a wait cut by a reading's moment excepted)
    assert 40 <= futex.count <= 60
    assert 0.019e9 <= futex.total / futex.count <= 0.03e9
    assert (5, dl.WAIT_RUNQUEUE) not in seen.waits or seen.waits[(5, dl.WAIT_RUNQUEUE)].count < 200


def test_drops_are_counted_by_the_kernels_reason(probe: DiagnosisProbe) -> None:
    names = drop_reason_names()
    no_socket = next(value for value, name in names.items() if name == "NO_SOCKET")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    probe.attach()
    try:
        before = probe.read()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for _ in range(50):
                sender.sendto(b"nobody listens", ("127.0.0.1", port))
        seen = probe.read().since(before)
    finally:
        probe.detach()
    assert seen.drops.get(no_socket, 0) >= 50


def test_a_detached_probe_counts_nothing(probe: DiagnosisProbe) -> None:
    name = f"hog-{uuid.uuid4().hex[:8]}"
    worker = worker_on()
    hog = start_hog(name)
    try:
        time.sleep(0.3)
        probe.watch({worker.pid: 7})
        assert not probe.attached
        seen = over(probe, 0.5)
    finally:
        probe.watch({})
        for p in (hog, worker):
            p.kill()
            p.wait()
    assert (7, dl.WAIT_RUNQUEUE) not in seen.waits
    assert not seen.drops
