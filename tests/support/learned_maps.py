"""Reading back the classification rules learned sessions write: the check
stage of the control-plane tests."""

from __future__ import annotations

import ctypes
import ipaddress

from sauron.bpf.loader import DataPlane
from sauron.bpf.rules import ue_rule


def teid_slice(dp: DataPlane, teid: int) -> int | None:
    """The slice the exact-TEID map gives, or None when it has no rule."""
    try:
        return int(dp.table("teid_slice")[ctypes.c_uint32(teid)].value)
    except KeyError:
        return None


def ue_slice(dp: DataPlane, address: str) -> int | None:
    """The slice of the host rule for one IPv4 UE address, or None."""
    table, key = ue_rule(dp, ipaddress.ip_network(f"{address}/32"))
    try:
        return int(table[key].value)
    except KeyError:
        return None
