"""Writing a catalog's classification rules into the data-plane maps."""

from __future__ import annotations

import ctypes
import ipaddress
from typing import Any

from sauron.abi import layout
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
        key4 = layout.Ipv4LpmKey(prefixlen=network.prefixlen, addr=int.from_bytes(packed, "little"))
        return dataplane.table("ue4_slice"), key4
    key6 = layout.Ipv6LpmKey(prefixlen=network.prefixlen)
    key6.addr[:] = packed
    return dataplane.table("ue6_slice"), key6


def catalog_rules(dataplane: Any, catalog: Catalog) -> dict[str, dict[bytes, int]]:
    """Every classification rule of a catalog: map name -> key -> slice id."""
    rules: dict[str, dict[bytes, int]] = {name: {} for name in RULE_MAPS}
    for s in catalog.slices:
        for teid in s.spec.teids:
            rules["teid_slice"][bytes(ctypes.c_uint32(teid))] = s.id
        for r in s.spec.teid_ranges:
            for value, plen in teid_range_prefixes(r.first, r.last):
                key = layout.TeidRangeKey(
                    prefixlen=plen, teid=int.from_bytes(value.to_bytes(4, "big"), "little")
                )
                rules["teid_range_slice"][bytes(key)] = s.id
        for net in s.spec.ue_subnets:
            _, ue_key = ue_rule(dataplane, net)
            rules["ue4_slice" if net.version == 4 else "ue6_slice"][bytes(ue_key)] = s.id
        for qfi in s.spec.qfis:
            rules["qfi_slice"][bytes(ctypes.c_uint32(qfi))] = s.id
    return rules


#: the maps that classify, with their key types
RULE_MAPS: dict[str, type[Any]] = {
    "teid_slice": ctypes.c_uint32,
    "teid_range_slice": layout.TeidRangeKey,
    "ue4_slice": layout.Ipv4LpmKey,
    "ue6_slice": layout.Ipv6LpmKey,
    "qfi_slice": ctypes.c_uint32,
}


def program_catalog(
    dataplane: Any, catalog: Catalog, keep: dict[str, set[bytes]] | None = None
) -> None:
    """Makes the catalog's rules the only ones but those in `keep` (the
    learned sessions' rules, by map name), in place: each rule written
    first, then every other removed (an array's entry zeroed), so a data
    path already counting never classifies by an empty table; then the
    rules generation is bumped so cached per-session slices are decided
    anew, and every point's direction is its own again."""
    keep = keep or {}
    for name, wanted in catalog_rules(dataplane, catalog).items():
        table, key_type = dataplane.table(name), RULE_MAPS[name]
        for key, slice_id in wanted.items():
            table[key_type.from_buffer_copy(key)] = ctypes.c_uint32(slice_id)
        kept = keep.get(name, set())
        for key in [bytes(k) for k in table]:
            if key not in wanted and key not in kept:
                del table[key_type.from_buffer_copy(key)]
    for point in range(layout.POINTS):
        dataplane.set_direction_mode(point, layout.DIRMODE_POINT)
    dataplane.bump_rules_generation()
