"""Writing a catalog's classification rules into the data-plane maps."""

from __future__ import annotations

import ctypes
import ipaddress
from typing import Any

from sauron.catalog import Catalog, IpNetwork


def teid_range_prefixes(first: int, last: int) -> list[tuple[int, int]]:
    """A TEID range as the fewest (value, prefix length) blocks: TEIDs are
    32-bit numbers, so IPv4 range summarisation does exactly this."""
    blocks = ipaddress.summarize_address_range(
        ipaddress.IPv4Address(first), ipaddress.IPv4Address(last)
    )
    return [(int(b.network_address), b.prefixlen) for b in blocks]


def ue_rule(dataplane: Any, network: IpNetwork) -> tuple[Any, Any]:
    """The LPM table and key of a UE subnet rule (IPv4 or IPv6)."""
    packed = network.network_address.packed
    if network.version == 4:
        ue4 = dataplane.table("ue4_slice")
        return ue4, ue4.Key(prefixlen=network.prefixlen, addr=int.from_bytes(packed, "little"))
    ue6 = dataplane.table("ue6_slice")
    key = ue6.Key(prefixlen=network.prefixlen)
    ctypes.memmove(ctypes.addressof(key) + 4, packed, 16)
    return ue6, key


def program_catalog(dataplane: Any, catalog: Catalog) -> None:
    """Replaces every classification rule with the catalog's, then bumps the
    rules generation so cached per-session slices are decided anew."""
    dataplane.reset_rules()
    teid_slice = dataplane.table("teid_slice")
    teid_ranges = dataplane.table("teid_range_slice")
    qfi_slice = dataplane.table("qfi_slice")
    for s in catalog.slices:
        sid = ctypes.c_uint32(s.id)
        for teid in s.spec.teids:
            teid_slice[ctypes.c_uint32(teid)] = sid
        for r in s.spec.teid_ranges:
            for value, plen in teid_range_prefixes(r.first, r.last):
                key = teid_ranges.Key(
                    prefixlen=plen, teid=int.from_bytes(value.to_bytes(4, "big"), "little")
                )
                teid_ranges[key] = sid
        for net in s.spec.ue_subnets:
            table, key = ue_rule(dataplane, net)
            table[key] = sid
        for qfi in s.spec.qfis:
            qfi_slice[ctypes.c_uint32(qfi)] = sid
    dataplane.bump_rules_generation()
