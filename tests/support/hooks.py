"""What an interface's hooks hold, asked of the kernel: the programs on its
tcx hooks in the order they run, and on its XDP hook (a tcx program is not
a clsact filter: `tc filter show` does not list it)."""

from __future__ import annotations

from sauron.bpf import link_calls
from sauron.host.netns import inside, link_index


def tcx_programs(ns: str | None, ifname: str, side: str) -> list[str]:
    """The names of the programs on the interface's tcx ingress or egress
    hook, first to run first."""
    return [link_calls.program_name(i) for i in tcx_program_ids(ns, ifname, side)]


def tcx_program_ids(ns: str | None, ifname: str, side: str) -> list[int]:
    ifindex = link_index(ns, ifname)
    with inside(ns):
        return link_calls.prog_query(ifindex, link_calls.ATTACH_TYPES[link_calls.TCX_HOOKS[side]])


def xdp_program_ids(ns: str | None, ifname: str) -> list[int]:
    """The programs on the interface's XDP hook (native, generic, offloaded)."""
    ifindex = link_index(ns, ifname)
    with inside(ns):
        return link_calls.xdp_query(ifindex).prog_ids()
