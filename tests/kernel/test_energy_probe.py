"""The energy probe in the kernel: sauron/bpf/c/energy/energy.c attached to sched_switch,
sched_stat_runtime, the packet softirqs and the clock tick. Its per-process times are held
against the scheduler's own account (/proc/PID/schedstat); processes are
found by pid, by name and by cgroup; unwatched work is not counted; packet
softirqs are timed; the probe's maps match the shared header. The probe is
the agent's: built and pinned apart, opened from its pins, attached for as
long as it is open."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sauron.abi import energy_layout
from sauron.bpf import libbpf
from sauron.bpf.companions import ENERGY
from sauron.bpf.loader import BpfObject
from sauron.bpf.pinned import PROGRAMS
from sauron.energy.probe import EnergyProbe, probe_in
from sauron.energy.steal import StealClock
from sauron.energy.watch import WatchEntry, cgroup2_mounts, resolve

pytestmark = [pytest.mark.kernel]

#: a process that burns CPU in bursts and sleeps between them
BURSTS = (
    "import ctypes, sys, time\n"
    "if len(sys.argv) > 1: ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)\n"
    "while True:\n"
    "    t = time.monotonic()\n"
    "    while time.monotonic() - t < 0.02: pass\n"
    "    time.sleep(0.005)\n"
)


#: where the tests pin their probes (conftest checks none is left)
PINS = Path("/sys/fs/bpf")


def pin_folder(what: str) -> Path:
    return PINS / f"sauron-test-{what}-{os.getpid()}"


@pytest.fixture(scope="module")
def probe() -> Iterator[EnergyProbe]:
    with probe_in(pin_folder("energy")) as p:
        yield p


def spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", BURSTS, *args])


def cpu_time_ns(pid: int) -> int:
    return sum(
        int(Path(f"/proc/{pid}/task/{t}/schedstat").read_text().split()[0])
        for t in os.listdir(f"/proc/{pid}/task")
    )


STEAL = StealClock(os.cpu_count() or 1)


def stolen_ns() -> int:
    return sum(STEAL.read() or [0])


def measure(
    probe: EnergyProbe, pids: list[int], seconds: float, run_time: bool = False
) -> tuple[list[int], list[int], int]:
    """(probe's time per watch index, schedstat per pid, the hypervisor's
    steal time on all CPUs) over the same span: the switch-to-switch timing,
    or with `run_time` the scheduler's run time as sched_stat_runtime
    reports it."""
    stolen_before = stolen_ns()
    before, truth_before = probe.read(), [cpu_time_ns(p) for p in pids]
    time.sleep(seconds)
    after, truth_after = probe.read(), [cpu_time_ns(p) for p in pids]
    stolen = stolen_ns() - stolen_before
    was, now = (
        (before.watched_run_ns, after.watched_run_ns)
        if run_time
        else (before.watched_ns, after.watched_ns)
    )
    measured = [sum(now[i]) - sum(was[i]) for i in range(len(pids))]
    return measured, [a - b for a, b in zip(truth_after, truth_before, strict=True)], stolen


def test_watched_processes_time_matches_the_scheduler(probe: EnergyProbe) -> None:
    watched, other = spawn(), spawn()
    try:
        probe.watch_tgids({watched.pid: 0})
        time.sleep(0.2)
        before_other = probe.read()
        measured, truth, stolen = measure(probe, [watched.pid], 2.0)
        assert truth[0] > 0.5e9  # it did work (about 80 % of a CPU)
        # switch to switch on the monotonic clock: the hypervisor's steal
        # time is included (schedstat leaves it out), at most all of it
        assert truth[0] * 0.97 <= measured[0] <= truth[0] * 1.03 + stolen, stolen
        # the scheduler's run time: the same account schedstat gives, up to
        # the moments the two are read
        run, truth, _ = measure(probe, [watched.pid], 2.0, run_time=True)
        assert run[0] == pytest.approx(truth[0], rel=0.005)
        # the unwatched process left nothing anywhere
        after = probe.read()
        for index in range(1, energy_layout.MAX_WATCHED):
            assert sum(after.watched_ns[index]) == sum(before_other.watched_ns[index])
            assert sum(after.watched_run_ns[index]) == sum(before_other.watched_run_ns[index])
    finally:
        probe.watch_tgids({})
        for p in (watched, other):
            p.kill()
            p.wait()


def test_processes_are_found_by_name_and_by_cgroup(probe: EnergyProbe) -> None:
    name = f"nf-{uuid.uuid4().hex[:8]}"
    by_name = spawn(name)
    mounts = cgroup2_mounts()
    assert mounts, "no cgroup v2 hierarchy mounted"
    cgroup = mounts[0] / f"sauron-test-{uuid.uuid4().hex[:8]}"
    cgroup.mkdir()
    in_cgroup = spawn()
    try:
        (cgroup / "cgroup.procs").write_text(str(in_cgroup.pid))
        time.sleep(0.2)
        entries = [WatchEntry(name=name), WatchEntry(cgroup=cgroup), WatchEntry(pid=999_999_999)]
        resolved = resolve(entries)
        assert resolved.tgids == {by_name.pid: 0}
        assert resolved.cgroups == {os.stat(cgroup).st_ino: 1}
        assert resolved.found == {0: 1, 1: 1, 2: 0}  # the pid that does not exist is not found
        probe.watch_tgids(resolved.tgids)
        probe.watch_cgroups(resolved.cgroups)
        measured, truth, stolen = measure(probe, [by_name.pid, in_cgroup.pid], 1.5)
        for index in (0, 1):  # switch to switch: steal included, as above
            assert truth[index] * 0.95 <= measured[index] <= truth[index] * 1.05 + stolen
    finally:
        probe.watch_tgids({})
        probe.watch_cgroups({})
        for p in (by_name, in_cgroup):
            p.kill()
            p.wait()
        for _ in range(100):  # the kernel empties the cgroup a moment after the exit
            try:
                cgroup.rmdir()
                break
            except OSError:
                time.sleep(0.01)


def test_packet_softirqs_and_idle_are_timed(probe: EnergyProbe) -> None:
    before, t0 = probe.read(), time.monotonic_ns()
    # loopback traffic: every datagram is received in a NET_RX softirq
    sender = subprocess.run(
        [
            sys.executable,
            "-c",
            "import socket\n"
            "r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); r.bind(('127.0.0.1', 0))\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "for _ in range(20000):\n"
            "    s.sendto(bytes(500), r.getsockname()); r.recv(600)\n",
        ],
        check=True,
    )
    assert sender.returncode == 0
    time.sleep(0.3)
    after, wall = probe.read(), time.monotonic_ns() - t0
    softirq = sum(after.softirq_ns()) - sum(before.softirq_ns())
    assert softirq > 0
    idle = sum(a - b for a, b in zip(after.idle_ns, before.idle_ns, strict=True))
    # idle time is current (the clock tick closes idle stretches) and bounded
    assert 0 < idle <= wall * len(after.idle_ns)


def test_probe_maps_match_the_energy_header(probe: EnergyProbe) -> None:
    """The pinned maps' sizes as the kernel holds them, and their fields as
    the compiler laid them out, are the header's (sauron_energy.h)."""
    with BpfObject(list(ENERGY.sources)) as compiled:
        for name, (key_type, value_type) in energy_layout.MAP_LAYOUTS.items():
            pinned = probe.table(name)
            assert pinned.key_size == ctypes.sizeof(key_type), name
            assert pinned.value_size == ctypes.sizeof(value_type), name
            if issubclass(value_type, ctypes.Structure):
                table = compiled.table(name)
                leaf = getattr(table, "sLeaf", table.Leaf)
                assert [f[0] for f in leaf._fields_] == [f[0] for f in value_type._fields_]
    assert probe.table("watched_time").max_entries == energy_layout.MAX_WATCHED


def test_run_time_statistics_are_on_while_the_probe_is_open(probe: EnergyProbe) -> None:
    before = probe.program_stats("sauron_sched_switch")
    time.sleep(0.2)
    after = probe.program_stats("sauron_sched_switch")
    assert after.run_count > before.run_count and after.run_time_ns > before.run_time_ns
    # the operator's sysctl is left as it was, before, during and after: the
    # probe holds the kernel's reference-counted switch (BPF_ENABLE_STATS),
    # which closing it, or the agent dying, always releases
    sysctl = Path("/proc/sys/kernel/bpf_stats_enabled")
    setting = sysctl.read_text()
    with probe_in(pin_folder("second")) as second:
        assert sysctl.read_text() == setting
        assert second.program_stats("sauron_sched_switch").run_count >= 0
    assert sysctl.read_text() == setting


def test_a_closed_probe_stops_watching_and_the_next_forgets_the_last_agent() -> None:
    """The agent's links die with it: a closed probe's programs stay pinned
    but run no more (no cost while no agent reads them); the next agent's
    probe starts from clean maps: no watches of the last agent, and no
    running stretch begun before the gap (counted whole, it would give the
    time no agent ran to whoever ran first)."""
    folder = pin_folder("reopen")
    busy = spawn()
    try:
        with probe_in(folder) as first:
            first.watch_tgids({busy.pid: 3})
            time.sleep(0.3)
            assert sum(first.read().watched_ns[3]) > 0
            build = first.build
            switch = libbpf.obj_get(str(build / PROGRAMS / "sauron_sched_switch"))
            stats = libbpf.enable_run_time_stats()  # the kernel counts runs meanwhile
            try:
                first.close()  # the agent ends
                ran = libbpf.program_run_stats(switch).run_count
                time.sleep(0.3)  # no agent runs
                assert libbpf.program_run_stats(switch).run_count == ran  # detached
                opened = time.monotonic_ns()
                with EnergyProbe(build) as second:
                    assert list(second.table("watched_tasks")) == []
                    time.sleep(0.2)
                    times = second.read()
                    assert second.program_stats("sauron_sched_switch").run_count > ran
                    assert sum(times.watched_ns[3]) == 0  # nobody watches it now
                    # idle counted since the reopening only, none of the gap
                    assert 0 < sum(times.idle_ns) <= (time.monotonic_ns() - opened) * times.cpus
            finally:
                os.close(stats)
                os.close(switch)
    finally:
        busy.kill()
        busy.wait()


@pytest.mark.netns
def test_received_packets_are_told_by_their_link(probe: EnergyProbe) -> None:
    """Pings across a veth pair: the replies received on the link named as
    Sauron's count as Sauron's, the requests received on the other end as
    the node's, each with the stack's time on them; a link not named gives
    none to Sauron."""
    from sauron.host.namespace_ref import namespace_identity
    from sauron.host.netns import Topology, link_index

    assert probe.receivers_unknown == ""
    with Topology() as topo:
        left, right = topo.namespace("rx-a"), topo.namespace("rx-b")
        topo.veth(left, "ra", "10.98.0.1/30", right, "rb", "10.98.0.2/30")
        link = (namespace_identity(left)[1], link_index(left, "ra"))

        def ping(count: int) -> tuple[int, int, int, int]:
            before = probe.read()
            command = ["ip", "netns", "exec", left, "ping", "-q", "-c", str(count)]
            subprocess.run(
                [*command, "-i", "0.002", "10.98.0.2"],
                check=True,
                capture_output=True,
            )
            after = probe.read()

            def grown(field: str) -> int:
                return sum(getattr(after, field)) - sum(getattr(before, field))

            return (
                grown("sauron_rx_packets"),
                grown("other_rx_packets"),
                grown("sauron_rx_ns"),
                grown("other_rx_ns"),
            )

        probe.receive_on({link})
        sauron, other, sauron_ns, other_ns = ping(200)
        # the replies arrive on "ra"; the requests on "rb" (and whatever else
        # the node received meanwhile) are the node's
        assert 200 <= sauron <= 205 and other >= 200
        assert sauron_ns > 0 and other_ns > 0
        probe.receive_on(set())
        sauron, other, sauron_ns, _ = ping(50)
        assert (sauron, sauron_ns) == (0, 0) and other >= 100
