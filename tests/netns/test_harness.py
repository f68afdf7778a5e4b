"""The harness every later test relies on: a program from sauron/bpf/c/ run on crafted
frames with BPF_PROG_TEST_RUN, and attached to a veth in a namespace with
real packets sent through it."""

from __future__ import annotations

import ctypes
import socket
import time
from pathlib import Path

import pytest

from sauron.bpf import libbpf
from sauron.bpf.loader import BpfObject
from sauron.host.netns import Topology, inside, leftover_namespaces

pytestmark = [pytest.mark.kernel]

IPV4_FRAME = bytes.fromhex("0200000000020200000000010800") + bytes(50)
IPV6_FRAME = bytes.fromhex("02000000000202000000000186dd") + bytes(60)
ARP_FRAME = bytes.fromhex("ffffffffffff0200000000010806") + bytes(28)


@pytest.fixture(scope="module")
def counter() -> BpfObject:
    obj = BpfObject(["frame_counter.c"])
    yield obj
    obj.close()


def counts(obj: BpfObject) -> dict[int, tuple[int, int]]:
    table = obj.table("frame_counts")
    return {k.value: (v.frames, v.bytes) for k, v in table.items()}


def test_test_run_returns_verdict_frame_and_maps(counter: BpfObject) -> None:
    counter.table("frame_counts").clear()
    fd = counter.function("count_xdp", "xdp").fd
    for frame in (IPV4_FRAME, IPV4_FRAME, IPV6_FRAME, ARP_FRAME):
        result = libbpf.test_run(fd, frame)
        assert result.retval == libbpf.XDP_PASS
        assert result.data_out == frame
    got = counts(counter)
    assert got[1] == (2, 2 * len(IPV4_FRAME))
    assert got[2] == (1, len(IPV6_FRAME))
    assert got[3] == (1, len(ARP_FRAME))
    assert got[0] == (0, 0)


def test_test_run_tc_program(counter: BpfObject) -> None:
    counter.table("frame_counts").clear()
    result = libbpf.test_run(counter.function("count_tc", "tc").fd, IPV6_FRAME)
    assert result.retval == libbpf.TC_ACT_OK
    assert counts(counter)[2] == (1, len(IPV6_FRAME))


def test_test_run_error_is_reported(counter: BpfObject) -> None:
    with pytest.raises(libbpf.BpfError):
        libbpf.test_run(counter.function("count_xdp", "xdp").fd, b"\x00" * 4)


def test_veth_attach_counts_real_packets(counter: BpfObject, topology: Topology) -> None:
    counter.table("frame_counts").clear()
    a = topology.namespace("a")
    b = topology.namespace("b")
    topology.veth(a, "eth0", "192.0.2.1/30", b, "eth0", "192.0.2.2/30")
    topology.attach_xdp(b, "eth0", counter.function("count_xdp", "xdp"))
    with inside(a):
        tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        tx.bind(("eth0", 0))
    with inside(b):
        rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
        rx.bind(("eth0", 0))
        rx.settimeout(0.5)
    before = counts(counter).get(1, (0, 0))[0]
    marker = IPV4_FRAME[:14] + b"\x45" + bytes(49)
    for _ in range(25):
        tx.send(marker)
    received = 0
    deadline = time.monotonic() + 3
    while received < 25 and time.monotonic() < deadline:
        try:
            if rx.recv(2048) == marker:
                received += 1
        except TimeoutError:
            break
    tx.close()
    rx.close()
    assert received == 25, "XDP_PASS must deliver every frame"
    assert counts(counter)[1][0] - before >= 25


def test_topology_teardown_leaves_nothing_after_a_failure(counter: BpfObject) -> None:
    topo = Topology()
    with pytest.raises(RuntimeError), topo:
        ns = topo.namespace("x")
        other = topo.namespace("y")
        topo.veth(ns, "eth0", "192.0.2.5/30", other, "eth0", "192.0.2.6/30")
        topo.attach_xdp(ns, "eth0", counter.function("count_xdp", "xdp"))
        topo.attach_tc_egress(other, "eth0", counter.function("count_tc", "tc"))
        raise RuntimeError("a test failing half way")
    assert leftover_namespaces(topo.prefix) == []
    assert not topo.attachments
    # no veth with the topology's temporary names left in the host namespace
    names = [name for _, name in socket.if_nameindex()]
    assert not [n for n in names if n.startswith(topo.prefix)]


def test_possible_cpus_matches_the_kernel() -> None:
    text = Path("/sys/devices/system/cpu/possible").read_text().strip()
    last = int(text.split("-")[-1])
    assert libbpf.possible_cpus() == last + 1
    assert ctypes.sizeof(ctypes.c_uint64) == 8
