"""Programs attached through links the kernel manages, beside other tools'
programs on the same interface, with real frames through a veth: a foreign
XDP program is named and kept, tcx runs Sauron first and leaves a foreign
clsact alone, pinned links outlive their process and are adopted, and a
link's program is swapped with no frame missed."""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO
from hooks import tcx_program_ids, tcx_programs, xdp_program_ids
from pyroute2 import IPRoute

from sauron.abi import layout
from sauron.agent.config import AgentConfig
from sauron.agent.interfaces import attach_interfaces
from sauron.bpf import ingress_hooks, libbpf, link_calls, links
from sauron.bpf.links import HookTaken, Leftover, Links, PinTaken, leftovers, pinned_links
from sauron.bpf.loader import TC, XDP, BpfObject, DataPlane
from sauron.host.namespace_ref import namespace_identity
from sauron.host.netns import (
    TC_PARENTS,
    XDP_FLAGS_SKB_MODE,
    Attachments,
    Topology,
    inside,
    link_index,
)

pytestmark = [pytest.mark.kernel, pytest.mark.netns]

#: an IPv4 frame to nobody on the link: every hook sees it, the stack drops it
FRAME = bytes.fromhex("0200000000020200000000010800") + b"\x45" + bytes(49)
IPV4 = 1  # frame_counter.c's class of IPv4 frames
SENT = 200


@pytest.fixture(scope="module")
def counters() -> Iterator[tuple[BpfObject, BpfObject]]:
    """Two separate copies of the frame counter: two programs of each
    type, each with its own counts."""
    first, second = BpfObject(["frame_counter.c"]), BpfObject(["frame_counter.c"])
    yield first, second
    first.close()
    second.close()


@pytest.fixture()
def run_stats() -> Iterator[None]:
    """The kernel counts every program's runs while the test lasts."""
    fd = libbpf.enable_run_time_stats()
    yield
    os.close(fd)


def frames_counted(counter: BpfObject) -> int:
    return int(counter.table("frame_counts")[ctypes.c_int(IPV4)].frames)


def runs(prog_fd: int) -> int:
    return libbpf.program_run_stats(prog_fd).run_count


def quiet_pair(topology: Topology) -> tuple[str, str]:
    """A peer and a UPF namespace joined by a veth whose ends are both n3,
    with IPv6 off: nothing crosses the link but the frames a test sends."""
    peer, upf = topology.namespace("peer"), topology.namespace("upf")
    for ns in (peer, upf):
        subprocess.run(
            [
                *("ip", "netns", "exec", ns, "sysctl", "-qw"),
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ],
            check=True,
        )
    topology.veth(peer, "n3", "192.0.2.1/30", upf, "n3", "192.0.2.2/30")
    return peer, upf


def send(ns: str, count: int = SENT, ifname: str = "n3") -> None:
    """`count` frames out of the namespace's link, paced so that none is
    dropped on the way (a veth queues what it receives on the backlog)."""
    with inside(ns):
        tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    with tx:
        tx.bind((ifname, 0))
        for i in range(count):
            tx.send(FRAME)
            if i % 50 == 49:
                time.sleep(0.002)
    time.sleep(0.05)  # the receiving side's softirq has run


def clsact(ns: str) -> str:
    return subprocess.run(
        ["tc", "-n", ns, "qdisc", "show", "dev", "n3", "clsact"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def filters(ns: str, side: str) -> str:
    return subprocess.run(
        ["tc", "-n", ns, "filter", "show", "dev", "n3", side],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def n3_config(upf: str, ingress: str) -> AgentConfig:
    return AgentConfig(interfaces=[{"name": "n3", "role": "n3", "netns": upf, "ingress": ingress}])


def test_a_foreign_xdp_program_is_named_never_replaced_and_auto_takes_tc(
    recording_dataplane: DataPlane,
    counters: tuple[BpfObject, BpfObject],
    topology: Topology,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    counter = counters[0]
    peer, upf = quiet_pair(topology)
    # another tool's XDP program, attached by netlink as such a tool does
    topology.attach_xdp(upf, "n3", counter.function("count_xdp", XDP))
    (foreign,) = xdp_program_ids(upf, "n3")
    with inside(upf):
        assert link_calls.xdp_query_id(link_index(upf, "n3"), XDP_FLAGS_SKB_MODE) == foreign
    for ingress in ("xdp-generic", "xdp-native"):
        with Links() as held, pytest.raises(HookTaken) as taken:
            attach_interfaces(recording_dataplane, n3_config(upf, ingress).interfaces, held)
        message = str(taken.value)
        assert f"interface n3 in namespace {upf}" in message
        assert f"count_xdp (id {foreign})" in message
        assert "set `ingress: tc` for this interface" in message
        assert xdp_program_ids(upf, "n3") == [foreign]
        assert tcx_program_ids(upf, "n3", "ingress") == tcx_program_ids(upf, "n3", "egress") == []
    # auto on a NIC tries native XDP first: the taken hook falls through to TC
    monkeypatch.setattr(
        ingress_hooks, "candidates", lambda requested, kind: (ingress_hooks.XDP_NATIVE, "tc")
    )
    before = frames_counted(counter)
    with Links() as held, caplog.at_level(logging.WARNING, logger="sauron.agent.interfaces"):
        hooks = attach_interfaces(recording_dataplane, n3_config(upf, "auto").interfaces, held)
        assert hooks == {"n3": "tc"}
        assert "XDP hook held by another program" in caplog.text
        assert tcx_programs(upf, "n3", "ingress") == ["sauron_n3_ingre"]
        assert xdp_program_ids(upf, "n3") == [foreign]
        send(peer)
        assert frames_counted(counter) - before == SENT
    assert xdp_program_ids(upf, "n3") == [foreign], "the foreign program stays after detach"
    assert tcx_program_ids(upf, "n3", "ingress") == []
    send(peer)
    assert frames_counted(counter) - before == 2 * SENT


def test_tcx_runs_first_and_leaves_a_foreign_clsact_and_its_filters(
    recording_dataplane: DataPlane,
    counters: tuple[BpfObject, BpfObject],
    topology: Topology,
    run_stats: None,
) -> None:
    """Sauron's programs return TC_ACT_UNSPEC (TCX_NEXT): the clsact
    filters after them count every frame too."""
    on_ingress, on_egress = counters
    peer, upf = quiet_pair(topology)
    foreign = Attachments()
    foreign.attach_tc(upf, "n3", on_ingress.function("count_tc", TC), "ingress")
    foreign.attach_tc(upf, "n3", on_egress.function("count_tc", TC), "egress")
    ours_in = recording_dataplane.program_fd(layout.POINT_N3_INGRESS, hook=TC)
    ours_out = recording_dataplane.program_fd(layout.POINT_N3_EGRESS, hook=TC)
    base = (frames_counted(on_ingress), frames_counted(on_egress), runs(ours_in), runs(ours_out))
    try:
        with Links() as held:
            attach_interfaces(recording_dataplane, n3_config(upf, "tc").interfaces, held)
            assert tcx_programs(upf, "n3", "ingress") == ["sauron_n3_ingre"]
            assert tcx_programs(upf, "n3", "egress") == ["sauron_n3_egres"]
            send(peer)  # into the UPF's n3: its ingress
            send(upf)  # out of the UPF's n3: its egress
            now = (frames_counted(on_ingress), frames_counted(on_egress))
            assert (now[0] - base[0], runs(ours_in) - base[2]) == (SENT, SENT)
            assert (now[1] - base[1], runs(ours_out) - base[3]) == (SENT, SENT)
        assert tcx_program_ids(upf, "n3", "ingress") == tcx_program_ids(upf, "n3", "egress") == []
        assert "clsact" in clsact(upf)
        assert "count_tc" in filters(upf, "ingress") and "count_tc" in filters(upf, "egress")
        send(peer)
        send(upf)
        assert frames_counted(on_ingress) - base[0] == 2 * SENT
        assert frames_counted(on_egress) - base[1] == 2 * SENT
        assert (runs(ours_in) - base[2], runs(ours_out) - base[3]) == (SENT, SENT)
    finally:
        foreign.detach_all()


def test_sauron_goes_ahead_of_a_foreign_tcx_program(
    recording_dataplane: DataPlane,
    counters: tuple[BpfObject, BpfObject],
    topology: Topology,
    run_stats: None,
) -> None:
    """A foreign tcx program that ends the chain (TC_ACT_OK) attached
    before Sauron's: Sauron's still runs first and sees every frame."""
    counter = counters[0]
    peer, upf = quiet_pair(topology)
    ifindex = link_index(upf, "n3")
    with inside(upf):  # appended, as a tool that names no position does
        foreign = link_calls.link_create(
            int(counter.function("count_tc", TC).fd), ifindex, link_calls.BPF_TCX_INGRESS
        )
    ours = recording_dataplane.program_fd(layout.POINT_N3_INGRESS, hook=TC)
    try:
        before = (frames_counted(counter), runs(ours))
        with Links() as held:
            attach_interfaces(recording_dataplane, n3_config(upf, "tc").interfaces, held)
            assert tcx_programs(upf, "n3", "ingress") == ["sauron_n3_ingre", "count_tc"]
            send(peer)
            assert (frames_counted(counter) - before[0], runs(ours) - before[1]) == (SENT, SENT)
        assert tcx_programs(upf, "n3", "ingress") == ["count_tc"]
    finally:
        os.close(foreign)
    assert tcx_program_ids(upf, "n3", "ingress") == []


def test_pinned_links_outlive_their_descriptors_and_are_adopted(
    counters: tuple[BpfObject, BpfObject], topology: Topology, pin_dir: Path
) -> None:
    on_ingress, on_egress = counters
    peer, upf = quiet_pair(topology)
    inode = namespace_identity(upf)[1]
    made = Links(pin_dir)
    xdp = made.attach_xdp(upf, "n3", int(on_ingress.function("count_xdp", XDP).fd))
    tcx = made.attach_tcx(upf, "n3", int(on_egress.function("count_tc", TC).fd), "egress")
    assert sorted(p.name for p in pin_dir.iterdir()) == [
        f"n3@{inode}:tcx-egress",
        f"n3@{inode}:xdp",
    ]
    made.keep()  # the descriptors close, the pins hold the links
    assert made.links == []
    with pytest.raises(PinTaken, match="adopt it"):
        Links(pin_dir).attach_tcx(upf, "n3", int(on_ingress.function("count_tc", TC).fd), "egress")
    assert tcx_program_ids(upf, "n3", "egress") == [tcx.info.prog_id]
    assert xdp_program_ids(upf, "n3") == [xdp.info.prog_id]
    assert tcx_program_ids(upf, "n3", "egress") == [tcx.info.prog_id]
    before = (frames_counted(on_ingress), frames_counted(on_egress))
    send(peer)
    send(upf)
    assert frames_counted(on_ingress) - before[0] == SENT
    assert frames_counted(on_egress) - before[1] == SENT

    found = {p.hook: p for p in pinned_links(pin_dir)}
    assert set(found) == {"xdp", "tcx-egress"}
    for pinned, link in ((found["xdp"], xdp), (found["tcx-egress"], tcx)):
        assert (pinned.ifname, pinned.netns) == ("n3", inode)
        assert pinned.info.link_id == link.info.link_id
        assert pinned.info.ifindex == link_index(upf, "n3")
        assert pinned.info.hook == pinned.hook
        assert pinned.prog_name == link.prog_name
    assert found["xdp"].prog_name == "count_xdp"

    later = Links(pin_dir)
    adopted = later.adopt()
    assert sorted(link.info.link_id for link in adopted) == sorted(
        (xdp.info.link_id, tcx.info.link_id)
    )
    assert later.find(upf, "n3", "xdp") is not None
    later.detach_all()
    assert xdp_program_ids(upf, "n3") == []
    assert tcx_program_ids(upf, "n3", "egress") == []
    assert list(pin_dir.iterdir()) == []
    send(peer)
    send(upf)
    assert frames_counted(on_ingress) - before[0] == SENT
    assert frames_counted(on_egress) - before[1] == SENT


CRASHING_AGENT = """
import sys, time
from pathlib import Path
from sauron.bpf.links import Links
from sauron.bpf.loader import BpfObject
counter = BpfObject(["frame_counter.c"])
program = counter.function("count_tc", "tc").fd
Links(Path(sys.argv[2])).attach_tcx(sys.argv[1], "n3", program, "ingress")
print("attached", flush=True)
time.sleep(120)
"""


def test_a_link_whose_interface_is_deleted_is_told_defunct(
    counters: tuple[BpfObject, BpfObject], topology: Topology
) -> None:
    """A UPF that restarts makes its TUN device anew: the kernel lets go of
    the programs on the old one, and the agent's links say so."""
    on_ingress, on_egress = counters
    _, upf = quiet_pair(topology)
    made = Links()
    try:
        made.attach_xdp(upf, "n3", int(on_ingress.function("count_xdp", XDP).fd))
        made.attach_tcx(upf, "n3", int(on_egress.function("count_tc", TC).fd), "egress")
        assert [on for _, on in made.attachments()] == [True, True]
        subprocess.run(["ip", "-n", upf, "link", "del", "n3"], check=True)
        assert [(link.hook, on) for link, on in made.attachments()] == [
            ("xdp", False),
            ("tcx-egress", False),
        ]
    finally:
        made.detach_all()


def test_a_killed_process_leaves_its_pinned_program_counting(
    topology: Topology, pin_dir: Path, run_stats: None
) -> None:
    peer, upf = quiet_pair(topology)
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASHING_AGENT, upf, str(pin_dir)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "attached\n"
    finally:
        proc.kill()
        proc.wait()
    (pinned,) = pinned_links(pin_dir)
    assert (pinned.hook, pinned.prog_name) == ("tcx-ingress", "count_tc")
    assert tcx_program_ids(upf, "n3", "ingress") == [pinned.info.prog_id]
    prog = link_calls.open_program(pinned.info.prog_id)
    try:
        before = runs(prog)
        send(peer)
        assert runs(prog) - before == SENT, "the program counts on with its process gone"
    finally:
        os.close(prog)
    with Links(pin_dir) as later:
        (adopted,) = later.adopt()
        assert adopted.info.prog_id == pinned.info.prog_id
    assert tcx_program_ids(upf, "n3", "ingress") == []
    assert list(pin_dir.iterdir()) == []


@pytest.mark.parametrize("hook", ["xdp", "tcx-ingress"])
def test_update_swaps_the_program_with_no_frame_missed(
    counters: tuple[BpfObject, BpfObject], topology: Topology, hook: str
) -> None:
    first, second = counters
    peer, upf = quiet_pair(topology)
    kind = XDP if hook == "xdp" else TC
    old_fd = int(first.function(f"count_{kind}", kind).fd)
    new_fd = int(second.function(f"count_{kind}", kind).fd)
    with Links() as held:
        if hook == "xdp":
            link = held.attach_xdp(upf, "n3", old_fd)
        else:
            link = held.attach_tcx(upf, "n3", old_fd, "ingress")
        link_id, old_prog = link.info.link_id, link.info.prog_id
        base = (frames_counted(first), frames_counted(second))

        # frames flow while the program changes: each is counted by one of them
        stop = threading.Event()
        sent = [0]

        def flood() -> None:
            with inside(peer):
                tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            with tx:
                tx.bind(("n3", 0))
                while not stop.is_set():
                    tx.send(FRAME)
                    sent[0] += 1
                    if sent[0] % 50 == 0:
                        time.sleep(0.002)

        sender = threading.Thread(target=flood)
        sender.start()
        try:
            deadline = time.monotonic() + 10
            while frames_counted(first) - base[0] < 500 and time.monotonic() < deadline:
                time.sleep(0.01)
            held.update(link, new_fd, expected_prog_fd=old_fd)
            while frames_counted(second) - base[1] < 500 and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            stop.set()
            sender.join()
        time.sleep(0.05)
        counted = (frames_counted(first) - base[0], frames_counted(second) - base[1])
        assert counted[0] >= 500 and counted[1] >= 500, counted
        assert counted[0] + counted[1] == sent[0], (counted, sent[0])
        assert (link.info.link_id, link.info.hook) == (link_id, hook)
        assert link.info.prog_id != old_prog and link.prog_name == f"count_{kind}"

        # only the new program counts now
        base = (frames_counted(first), frames_counted(second))
        send(peer)
        assert (frames_counted(first) - base[0], frames_counted(second) - base[1]) == (0, SENT)
        # a swap that expects another program than the one attached is refused
        with pytest.raises(libbpf.BpfError) as refused:
            held.update(link, old_fd, expected_prog_fd=old_fd)
        assert refused.value.errno == errno.EPERM
        assert link.info.prog_id == link_calls.link_info(link.fd).prog_id
    assert xdp_program_ids(upf, "n3") == tcx_program_ids(upf, "n3", "ingress") == []


def test_leftovers_are_sauron_programs_no_pin_explains(
    recording_dataplane: DataPlane, topology: Topology, pin_dir: Path
) -> None:
    dp = recording_dataplane
    _, upf = quiet_pair(topology)
    # what a version that attached through netlink leaves after a SIGKILL
    old = Attachments()
    old.attach_xdp(upf, "n3", dp.program(layout.POINT_N3_INGRESS, hook=XDP))
    old.attach_tc(upf, "n3", dp.program(layout.POINT_N3_EGRESS, hook=TC), "egress")
    try:
        (xdp_id,) = xdp_program_ids(upf, "n3")
        assert leftovers(upf, "n3") == [
            Leftover("xdp", xdp_id, "sauron_n3_ingre"),
            Leftover("tc-egress", 0, "sauron_n3_egress"),
        ]
    finally:
        old.detach_all()
    assert leftovers(upf, "n3") == []
    with Links(pin_dir) as held:
        attach_interfaces(dp, n3_config(upf, "tc").interfaces, held)
        explained = [p.info.prog_id for p in pinned_links(pin_dir)]
        assert len(explained) == 2
        assert leftovers(upf, "n3", explained) == []
        unexplained = leftovers(upf, "n3")
        assert [(x.hook, x.prog_name) for x in unexplained] == [
            ("tcx-ingress", "sauron_n3_ingre"),
            ("tcx-egress", "sauron_n3_egres"),
        ]
    assert leftovers(upf, "n3") == []


def test_a_kernel_without_tcx_gets_clsact_filters_replaced_in_place(
    recording_dataplane: DataPlane,
    counters: tuple[BpfObject, BpfObject],
    topology: Topology,
    run_stats: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before 6.6 there is no tcx (stood in for: this kernel has it, so the
    probe is made to say no): Sauron's TC programs go on clsact at their
    priority, ahead of another tool's filter, which counts on. A filter of
    Sauron's left by a killed agent is replaced, never doubled, and
    counting goes on; detaching removes Sauron's filters only."""
    monkeypatch.setattr(links, "tcx_available", lambda: False)
    on_ingress, _ = counters
    peer, upf = quiet_pair(topology)
    subprocess.run(["tc", "-n", upf, "qdisc", "add", "dev", "n3", "clsact"], check=True)
    with inside(upf):
        ipr = IPRoute()
    with ipr:  # another tool's filter, behind Sauron's priority
        ipr.tc(
            "add-filter",
            "bpf",
            link_index(upf, "n3"),
            ":1",
            fd=on_ingress.function("count_tc", TC).fd,
            name="count_tc",
            parent=TC_PARENTS["ingress"],
            prio=100,
            classid=1,
            direct_action=True,
        )
    ours_in = recording_dataplane.program_fd(layout.POINT_N3_INGRESS, hook=TC)
    base = (frames_counted(on_ingress), runs(ours_in))
    try:
        killed = Links()
        attach_interfaces(recording_dataplane, n3_config(upf, "tc").interfaces, killed)
        assert tcx_program_ids(upf, "n3", "ingress") == []
        assert "sauron_n3_ingre" in filters(upf, "ingress") and "pref 7 " in filters(upf, "ingress")
        send(peer)
        assert (frames_counted(on_ingress) - base[0], runs(ours_in) - base[1]) == (SENT, SENT)
        killed.links.clear()  # the agent dies: its filters stay, counting
        with Links() as held:
            attach_interfaces(recording_dataplane, n3_config(upf, "tc").interfaces, held)
            shown = filters(upf, "ingress")
            assert shown.count("flowid :1 sauron_n3_ingre") == 1, "replaced, not doubled"
            send(peer)
            assert runs(ours_in) - base[1] == 2 * SENT
        assert "sauron" not in filters(upf, "ingress") + filters(upf, "egress")
        assert "count_tc" in filters(upf, "ingress") and "clsact" in clsact(upf)
        send(peer)
        assert frames_counted(on_ingress) - base[0] == 3 * SENT
    finally:
        subprocess.run(["tc", "-n", upf, "qdisc", "del", "dev", "n3", "clsact"], check=False)
