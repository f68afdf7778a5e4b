"""Which hook sees what a link receives, chosen per link by measurement.

Generic XDP copies each frame's head into a new buffer; native XDP runs in
the driver before any socket buffer exists on a NIC, but on a veth it turns
every socket buffer into an XDP frame and back; a TC ingress program (tcx)
runs on the socket buffer the stack already built. Which is cheapest
depends on the driver, so `auto` follows what `make bench` measured
(bench/throughput.py runs every mode, empty and with Sauron, on a veth in
one run) and, for a driver never measured, what a driver with native XDP is
built for.
"""

from __future__ import annotations

from typing import Final

from sauron.bpf.loader import TC as TC_PROGRAM
from sauron.bpf.loader import XDP as XDP_PROGRAM

XDP_NATIVE: Final = "xdp-native"
XDP_GENERIC: Final = "xdp-generic"
TC: Final = "tc"
HOOKS: Final = (XDP_NATIVE, XDP_GENERIC, TC)

#: the cheapest ingress hook by link kind, as measured here (veth, 2 CPUs,
#: kernel 6.18, frames/s taken in ÷ no program, empty programs: tc 0.990,
#: xdp-generic 0.942, xdp-native 0.853; docs/performance.md has
#: the current run).
MEASURED_CHEAPEST: Final[dict[str, str]] = {"veth": TC}
#: virtual links never measured (tun, gtp, bridge, vlan, ...): tc works on
#: every one of them without copying a frame's head, and ranks first on veth
VIRTUAL_LINK_DEFAULT: Final = TC


def candidates(requested: str, kind: str | None) -> tuple[str, ...]:
    """The hooks to try, in order, for a link of this kind (None: a
    physical NIC): the one asked for, or under `auto` the measured one, else
    native XDP with tc behind it for a driver that refuses it."""
    if requested != "auto":
        return (requested,)
    if kind in MEASURED_CHEAPEST:
        return (MEASURED_CHEAPEST[kind],)
    if kind is None:
        return (XDP_NATIVE, TC)
    return (VIRTUAL_LINK_DEFAULT,)


def program_type(hook: str) -> str:
    """The type of program a hook runs: TC or XDP (both XDP modes)."""
    return TC_PROGRAM if hook == TC else XDP_PROGRAM
