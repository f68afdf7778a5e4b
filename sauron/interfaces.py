"""Attaching the data-plane programs to interfaces by their reference point:
GTP-U sides (N3, N9) get the N3 programs, the data-network side (N6) the N6
ones; XDP on ingress, TC clsact on egress."""

from __future__ import annotations

from sauron.bpf import layout
from sauron.bpf.loader import DataPlane
from sauron.config import InterfaceConfig
from sauron.netns import Attachments

INGRESS_POINT = {
    "n3": layout.POINT_N3_INGRESS,
    "n9": layout.POINT_N3_INGRESS,
    "n6": layout.POINT_N6_INGRESS,
}
EGRESS_POINT = {
    "n3": layout.POINT_N3_EGRESS,
    "n9": layout.POINT_N3_EGRESS,
    "n6": layout.POINT_N6_EGRESS,
}


def attach_interfaces(dp: DataPlane, interfaces: list[InterfaceConfig], into: Attachments) -> None:
    """Attaches every configured interface; `into` records them so one
    detach_all() undoes everything, also after a failure half way."""
    for itf in interfaces:
        into.attach_xdp(
            itf.netns,
            itf.name,
            dp.program(INGRESS_POINT[itf.role]),
            generic=itf.xdp_mode == "generic",
        )
        if itf.tc_egress:
            into.attach_tc_egress(itf.netns, itf.name, dp.program(EGRESS_POINT[itf.role]))
