"""The kernel counters a diagnosis reads beside its probe: from a folder
shaped like /proc (the files as kernel 6.18 writes them), then from this
machine's own /proc for this process. No root, no kernel programs."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from sauron.diagnosis.host_counters import (
    CpuTimes,
    HostHistory,
    HostReading,
    LinkDrops,
    Softnet,
    UdpCounters,
    read_cpu_times,
    read_host,
    read_link_drops,
    read_mhz,
    read_run_delay,
    read_softnet,
    read_udp,
)

SOFTNET = (
    "01f8a472 00000000 00000002 00000000 00000000 00000000 00000000 00000000 00000000 "
    "00000000 00000000 00000000 00000000 00000000 00000000\n"
    "0253cbb7 0000000a 00000005 00000000 00000000 00000000 00000000 00000000 00000000 "
    "00000000 00000000 00000000 00000001 00000000 00000000\n"
)
SNMP = (
    "Ip: Forwarding DefaultTTL\nIp: 1 64\n"
    "Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors "
    "IgnoredMulti MemErrors\n"
    "Udp: 145724 250 2716 148958 2716 0 0 0 0\n"
    "UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors "
    "InCsumErrors IgnoredMulti MemErrors\nUdpLite: 0 0 0 0 0 0 0 0 0\n"
)
DEV = (
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets "
    "errs drop fifo colls carrier compressed\n"
    "    lo:    1000      10    0    0    0     0          0         0     1000      10    "
    "0    0    0     0       0          0\n"
    "ogstun: 5000000   4000    0    3    0     0          0         0  9000000   7000    "
    "0   41    0     0       0          0\n"
)


def fake_proc(tmp_path: Path, pid: int, run_delays: list[int]) -> Path:
    (tmp_path / "net").mkdir(parents=True, exist_ok=True)
    (tmp_path / "net" / "softnet_stat").write_text(SOFTNET)
    net = tmp_path / str(pid) / "net"
    net.mkdir(parents=True, exist_ok=True)
    (net / "snmp").write_text(SNMP)
    (net / "dev").write_text(DEV)
    for n, delay in enumerate(run_delays):
        task = tmp_path / str(pid) / "task" / str(pid + n)
        task.mkdir(parents=True, exist_ok=True)
        (task / "schedstat").write_text(f"123456 {delay} 42\n")
    return tmp_path


def test_each_file_is_read_as_the_kernel_writes_it(tmp_path: Path) -> None:
    root = fake_proc(tmp_path, 4242, [1_000, 2_500])
    assert read_softnet(root) == [Softnet(0x01F8A472, 0, 2), Softnet(0x0253CBB7, 10, 5)]
    assert read_udp(4242, root) == UdpCounters(145724, 2716, 2716)
    assert read_link_drops(4242, root)["ogstun"] == LinkDrops(3, 41)
    assert read_run_delay(4242, root) == 3_500


def test_an_interval_is_the_difference_and_what_vanished_is_left_out(tmp_path: Path) -> None:
    root = fake_proc(tmp_path, 4242, [1_000])
    before = read_host([4242, 77], {4242: ["ogstun", "nope"]}, root)
    assert 77 not in before.udp and (4242, "nope") not in before.links
    (root / "4242" / "net" / "dev").write_text(DEV.replace("   41 ", "   50 "))
    (root / "4242" / "net" / "snmp").write_text(
        SNMP.replace("2716 148958 2716", "2720 148958 2719")
    )
    (root / "4242" / "task" / "4242" / "schedstat").write_text("1 9000 3\n")
    moved = read_host([4242], {4242: ["ogstun"]}, root).since(before)
    assert moved.links[(4242, "ogstun")] == LinkDrops(0, 9)
    assert moved.udp[4242] == UdpCounters(0, 4, 3)
    assert moved.run_delay_ns[4242] == 8_000
    assert moved.softnet == [Softnet(0, 0, 0), Softnet(0, 0, 0)]


def test_a_process_that_is_gone_gives_no_figure(tmp_path: Path) -> None:
    root = fake_proc(tmp_path, 1, [5])
    assert read_udp(999, root) is None and read_run_delay(999, root) is None
    assert read_link_drops(999, root) == {}
    assert read_softnet(tmp_path / "missing") == []


def test_this_machines_proc_reads() -> None:
    pid = os.getpid()
    before = read_udp(pid)
    assert before is not None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", 0))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for _ in range(5):
                tx.sendto(b"x", rx.getsockname())
        for _ in range(5):
            rx.recv(16)
    after = read_udp(pid)
    assert after is not None and after.in_datagrams >= before.in_datagrams + 5
    assert "lo" in read_link_drops(pid)
    assert len(read_softnet()) >= 1
    assert (read_run_delay(pid) or 0) >= 0


def test_the_history_gives_what_moved_over_a_span_of_intervals() -> None:
    """Readings at each interval's end: what moved since the newest one at
    least the span before the latest (the oldest kept when none is)."""
    history = HostHistory(keep=4)
    assert history.moved_over(2.0) is None
    for t, refused in ((0.0, 0), (0.5, 10), (1.0, 30), (1.5, 30), (2.0, 31)):
        history.add(t, HostReading(udp={812: UdpCounters(0, refused, refused)}))
    moved = history.moved_over(1.0)
    assert moved is not None and moved.udp[812].rcvbuf_errors == 31 - 30
    # 0.0 fell out of the four kept: from 0.5 on
    longest = history.moved_over(5.0)
    assert longest is not None and longest.udp[812].rcvbuf_errors == 31 - 10


def test_a_namespace_is_counted_once_and_never_through_a_kernel_thread(tmp_path: Path) -> None:
    """Two processes of one namespace give its UDP counters once; a kernel
    thread (a softirq thread watched beside them: empty command line) gives
    none, as it lives in the host's namespace."""
    root = fake_proc(tmp_path, 4242, [1_000])
    fake_proc(tmp_path, 4243, [1_000])
    fake_proc(tmp_path, 24, [500])
    for pid, cmdline in ((4242, b"upf\0"), (4243, b"upf\0"), (24, b"")):
        (root / str(pid) / "cmdline").write_bytes(cmdline)
    (root / "4242" / "ns").mkdir()
    (root / "4242" / "ns" / "net").write_text("")
    (root / "4243" / "ns").mkdir()
    os.link(root / "4242" / "ns" / "net", root / "4243" / "ns" / "net")  # the same inode
    reading = read_host([24, 4242, 4243], {}, root)
    assert list(reading.udp) == [4242]
    assert reading.run_delay_ns == {24: 500, 4242: 1_000, 4243: 1_000}


def test_cpu_times_and_clocks_are_read_per_cpu(tmp_path: Path) -> None:
    (tmp_path / "stat").write_text(
        "cpu  10 0 5 80 1 0 3 1 0 0\n"
        "cpu0 5 0 2 40 1 0 2 0 0 0\n"
        "cpu1 5 0 3 40 0 0 1 1 0 0\n"
        "intr 12345\n"
    )
    (tmp_path / "cpuinfo").write_text(
        "processor\t: 0\ncpu MHz\t\t: 2994.374\n\nprocessor\t: 1\ncpu MHz\t\t: 1500.000\n"
    )
    assert read_cpu_times(tmp_path) == [CpuTimes(50, 2, 0), CpuTimes(50, 1, 1)]
    assert read_mhz(tmp_path) == [2994.374, 1500.0]
    later = HostReading(cpu=[CpuTimes(150, 12, 0), CpuTimes(150, 1, 51)], mhz=[1000.0])
    moved = later.since(HostReading(cpu=read_cpu_times(tmp_path), mhz=read_mhz(tmp_path)))
    assert moved.cpu == [CpuTimes(100, 10, 0), CpuTimes(100, 0, 50)] and moved.mhz == [1000.0]
    assert read_cpu_times(tmp_path / "nowhere") == [] and read_mhz(tmp_path / "nowhere") == []
