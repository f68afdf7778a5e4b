"""The kernel's own counters a diagnosis reads beside its probe, cheap
enough to read every interval, so that a degraded interval has a healthy
baseline before it even though the probe was not attached then:

- per CPU, /proc/net/softnet_stat: packets the receive softirq processed,
  dropped from a full backlog, and the times it ran out of budget with work
  left (squeezed);
- in the network function's namespace (/proc/PID/net/...): UDP datagrams
  refused for a full socket receive buffer and UDP receive errors
  (/proc/PID/net/snmp), and each link's drops (/proc/PID/net/dev: for a
  TUN device, tx_dropped are packets the kernel could not queue to the
  process reading it);
- per process, /proc/PID/task/*/schedstat: the time its threads waited on
  a run queue, the scheduler's own account (the probe's run-queue wait
  when attached, with who held the CPU);
- per CPU, /proc/stat: the time spent in packet softirqs and the time the
  hypervisor stole; /proc/cpuinfo: each CPU's clock now.

`root` is /proc, or a folder shaped like it for tests. A file that cannot
be read (the process ended, an older kernel) gives no figure, never an
error: a diagnosis says what it could not measure."""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from sauron.energy.frequency import cpuinfo_frequencies

PROC = Path("/proc")


@dataclass(frozen=True)
class Softnet:
    """One CPU's row of softnet_stat."""

    processed: int
    dropped: int
    squeezed: int


@dataclass(frozen=True)
class UdpCounters:
    in_datagrams: int
    in_errors: int
    rcvbuf_errors: int


@dataclass(frozen=True)
class LinkDrops:
    rx_dropped: int
    tx_dropped: int


@dataclass(frozen=True)
class CpuTimes:
    """One CPU's row of /proc/stat, in clock ticks: all of its time, and of
    it the softirqs' and the hypervisor's steal."""

    total: int
    softirq: int
    steal: int


@dataclass
class HostReading:
    """One reading of every counter; `since` gives the interval's share."""

    softnet: list[Softnet] = field(default_factory=list)
    #: pid -> the UDP counters of its namespace
    udp: dict[int, UdpCounters] = field(default_factory=dict)
    #: (pid, link) -> that link's drops in the process's namespace
    links: dict[tuple[int, str], LinkDrops] = field(default_factory=dict)
    #: pid -> nanoseconds its threads waited on a run queue
    run_delay_ns: dict[int, int] = field(default_factory=dict)
    cpu: list[CpuTimes] = field(default_factory=list)
    #: each CPU's clock in MHz when read (a level, not a counter)
    mhz: list[float] = field(default_factory=list)

    def since(self, before: HostReading) -> HostReading:
        """What moved after `before`; a figure missing from either side
        (a process that started or ended between them) is left out."""
        out = HostReading(mhz=list(self.mhz))
        if len(before.cpu) == len(self.cpu):
            out.cpu = [
                CpuTimes(a.total - b.total, a.softirq - b.softirq, a.steal - b.steal)
                for a, b in zip(self.cpu, before.cpu, strict=True)
            ]
        if len(before.softnet) == len(self.softnet):
            out.softnet = [
                Softnet(a.processed - b.processed, a.dropped - b.dropped, a.squeezed - b.squeezed)
                for a, b in zip(self.softnet, before.softnet, strict=True)
            ]
        for pid, u in self.udp.items():
            if (was := before.udp.get(pid)) is not None:
                out.udp[pid] = UdpCounters(
                    u.in_datagrams - was.in_datagrams,
                    u.in_errors - was.in_errors,
                    u.rcvbuf_errors - was.rcvbuf_errors,
                )
        for key, d in self.links.items():
            if (was_link := before.links.get(key)) is not None:
                out.links[key] = LinkDrops(
                    d.rx_dropped - was_link.rx_dropped, d.tx_dropped - was_link.tx_dropped
                )
        for pid, ns in self.run_delay_ns.items():
            if (was_ns := before.run_delay_ns.get(pid)) is not None:
                out.run_delay_ns[pid] = ns - was_ns
        return out


class HostHistory:
    """The readings at the end of the last intervals, with their times:
    what moved over a span longer than one interval (a loss diagnosis looks
    back over the time its losses could have happened in)."""

    def __init__(self, keep: int = 256) -> None:
        self._readings: deque[tuple[float, HostReading]] = deque(maxlen=keep)

    def add(self, at: float, reading: HostReading) -> None:
        self._readings.append((at, reading))

    def moved_over(self, seconds: float) -> HostReading | None:
        """What moved from the newest reading at least `seconds` before the
        newest one (the oldest kept, when none is that old) to the newest;
        None before two readings."""
        if len(self._readings) < 2:
            return None
        newest_at, newest = self._readings[-1]
        start = self._readings[0][1]
        for at, reading in reversed(self._readings):
            if at <= newest_at - seconds:
                start = reading
                break
        return newest.since(start)


def read_softnet(root: Path = PROC) -> list[Softnet]:
    """Each online CPU's row, in CPU order (hexadecimal columns: processed,
    dropped, time squeezed first)."""
    try:
        text = (root / "net" / "softnet_stat").read_text()
    except OSError:
        return []
    rows = []
    for line in text.splitlines():
        cols = line.split()
        if len(cols) >= 3:
            rows.append(Softnet(int(cols[0], 16), int(cols[1], 16), int(cols[2], 16)))
    return rows


def read_cpu_times(root: Path = PROC) -> list[CpuTimes]:
    """Each CPU's row of /proc/stat, in CPU order (user nice system idle
    iowait irq softirq steal ...; guest time is inside user's)."""
    try:
        text = (root / "stat").read_text()
    except OSError:
        return []
    rows = []
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu":
            continue
        cols = [int(v) for v in rest.split()]
        if len(cols) >= 8:
            rows.append(CpuTimes(sum(cols[:8]), cols[6], cols[7]))
    return rows


def read_mhz(root: Path = PROC) -> list[float]:
    """Each CPU's clock from /proc/cpuinfo, in CPU order (none when the
    file gives none)."""
    try:
        text = (root / "cpuinfo").read_text()
    except OSError:
        return []
    found = cpuinfo_frequencies(text)
    return [found[cpu] / 1e6 for cpu in sorted(found)]


def read_udp(pid: int, root: Path = PROC) -> UdpCounters | None:
    """The UDP counters of the namespace process `pid` lives in."""
    try:
        text = (root / str(pid) / "net" / "snmp").read_text()
    except OSError:
        return None
    rows = [line.split() for line in text.splitlines() if line.startswith("Udp:")]
    if len(rows) < 2:
        return None
    values = dict(zip(rows[0][1:], rows[1][1:], strict=False))
    try:
        return UdpCounters(
            int(values["InDatagrams"]), int(values["InErrors"]), int(values["RcvbufErrors"])
        )
    except (KeyError, ValueError):
        return None


def read_link_drops(pid: int, root: Path = PROC) -> dict[str, LinkDrops]:
    """Every link of process `pid`'s namespace, from /proc/PID/net/dev
    (receive columns first: bytes packets errs drop ...; then transmit)."""
    try:
        text = (root / str(pid) / "net" / "dev").read_text()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines()[2:]:
        name, _, rest = line.partition(":")
        cols = rest.split()
        if len(cols) >= 12:
            out[name.strip()] = LinkDrops(int(cols[3]), int(cols[11]))
    return out


def read_run_delay(pid: int, root: Path = PROC) -> int | None:
    """Nanoseconds every thread of process `pid` has waited on a run queue
    (schedstat's second field), threads that ended excepted."""
    tasks = root / str(pid) / "task"
    try:
        threads = os.listdir(tasks)
    except OSError:
        return None
    total = 0
    for tid in threads:
        try:
            total += int((tasks / tid / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # a thread that ended between the listing and the read
    return total


def _net_namespace(pid: int, root: Path) -> int | None:
    """The network namespace's inode of process `pid`; None: unknown."""
    try:
        return os.stat(root / str(pid) / "ns" / "net").st_ino
    except OSError:
        return None


def _kernel_thread(pid: int, root: Path) -> bool:
    """A kernel thread has no command line."""
    try:
        return (root / str(pid) / "cmdline").read_bytes() == b""
    except OSError:
        return False


def read_host(pids: list[int], links: dict[int, list[str]], root: Path = PROC) -> HostReading:
    """Every counter for the watched processes `pids`, and for `links`
    (pid -> link names in its namespace, such as its TUN devices)."""
    reading = HostReading(softnet=read_softnet(root), cpu=read_cpu_times(root), mhz=read_mhz(root))
    namespaces: set[int] = set()
    for pid in pids:
        # a namespace's UDP counters once, and never through a kernel
        # thread (it lives in the host's namespace, not a function's)
        namespace = _net_namespace(pid, root)
        if namespace not in namespaces and not _kernel_thread(pid, root):
            if namespace is not None:
                namespaces.add(namespace)
            if (udp := read_udp(pid, root)) is not None:
                reading.udp[pid] = udp
        if (delay := read_run_delay(pid, root)) is not None:
            reading.run_delay_ns[pid] = delay
        wanted = links.get(pid, [])
        if wanted:
            found = read_link_drops(pid, root)
            for name in wanted:
                if name in found:
                    reading.links[(pid, name)] = found[name]
    return reading
