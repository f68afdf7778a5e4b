"""Processes in network namespaces of their own, as a container's init or a
UPF pod's process is, and links put into them."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hooks import tcx_programs
from pyroute2 import IPRoute

from sauron.host.netns import Topology, inside


@contextmanager
def holder(executable: str = "sleep") -> Iterator[int]:
    """A process in a network namespace of its own, as a container's init."""
    proc = subprocess.Popen(["unshare", "--net", "--", executable, "600"])
    comm = Path(executable).name[:15]
    try:
        # ready once unshare has switched namespace and exec'd the holder
        for _ in range(500):
            if Path(f"/proc/{proc.pid}/comm").read_text().strip() == comm:
                break
            time.sleep(0.01)
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def link_into(topo: Topology, src: str, src_if: str, pid: int, name: str) -> None:
    """A veth from namespace `src` (end `src_if`) into the namespace of
    process `pid`, where its end is called `name`; both up."""
    with inside(src), IPRoute() as ipr:
        ipr.link("add", ifname=src_if, kind="veth", peer="tmp" + src_if)
        ipr.link("set", index=ipr.link_lookup(ifname="tmp" + src_if)[0], net_ns_pid=pid)
        ipr.link("set", index=ipr.link_lookup(ifname=src_if)[0], state="up")
    with inside(f"/proc/{pid}/ns/net"), IPRoute() as ipr:
        index = ipr.link_lookup(ifname="tmp" + src_if)[0]
        ipr.link("set", index=index, ifname=name, state="up")


def ingress_attached(pid: int, name: str) -> bool:
    """Whether a program sees what link `name` of process `pid`'s namespace
    receives: an XDP program, or one of Sauron's on tcx ingress (the hook
    `ingress: auto` takes on a veth)."""
    with inside(f"/proc/{pid}/ns/net"), IPRoute() as ipr:
        link = ipr.get_links(ipr.link_lookup(ifname=name)[0])[0]
    xdp = link.get_attr("IFLA_XDP")
    if xdp and xdp.get_attr("IFLA_XDP_ATTACHED"):
        return True
    return any(
        p.startswith("sauron_") for p in tcx_programs(f"/proc/{pid}/ns/net", name, "ingress")
    )
