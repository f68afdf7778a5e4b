"""The data path's security checks (lib/security.h): turning them on, the
lists they check against (the known gNBs and peer UPFs, the core's own
prefixes), the learned sessions' addresses, and reading what they found:
counts per slice and kind, and the entries the detections read."""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from sauron.abi import layout
from sauron.bpf import libbpf

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: the bits of sauron_config.measure the security settings own
BITS = layout.MEASURE_SECURITY | layout.MEASURE_PEERS | layout.MEASURE_PROTECTED


def mapped16(address: IpAddress) -> bytes:
    """An address as the programs keep it: IPv4 mapped into IPv6."""
    if address.version == 4:
        return bytes(10) + b"\xff\xff" + address.packed
    return address.packed


def address_of(raw: bytes) -> IpAddress:
    v6 = ipaddress.IPv6Address(bytes(raw))
    return v6.ipv4_mapped or v6


def _write_set(table: Any, wanted: dict[bytes, Any]) -> None:
    """Makes `table` hold the keys of `wanted` (raw key bytes -> key):
    the new ones added before the gone ones are removed, so a key in both
    the old and the new lists is never missing, even for a moment."""
    key_size = ctypes.sizeof(table.Key)
    # iter(), not list(): bcc's LPM trie has no length, and list() asks for it
    present = {bytes(k)[:key_size] for k in iter(table)}
    for raw, key in wanted.items():
        if raw not in present:
            table[key] = ctypes.c_uint32(1)
    for raw in present - wanted.keys():
        with contextlib.suppress(KeyError):
            del table[table.Key.from_buffer_copy(raw)]


def _lpm_key(net: IpNetwork) -> ctypes.Structure:
    if net.version == 4:
        key4 = layout.Ipv4LpmKey(prefixlen=net.prefixlen)
        key4.addr = int.from_bytes(net.network_address.packed, "little")
        return key4
    key6 = layout.Ipv6LpmKey(prefixlen=net.prefixlen)
    ctypes.memmove(key6.addr, net.network_address.packed, 16)
    return key6


def set_checks(
    dataplane: Any,
    on: bool,
    peers: Iterable[IpAddress] | None = None,
    protected: Iterable[IpNetwork] = (),
) -> None:
    """Turns the checks on or off; `peers` None: no list, so no frame is
    counted for its outer source; an empty list counts every one. The lists
    replace the previous ones, entries in both staying throughout."""
    peer_keys = [layout.UeKey.from_buffer_copy(mapped16(a)) for a in peers or ()]
    _write_set(dataplane.table("known_peers"), {bytes(k): k for k in peer_keys})
    nets = list(protected)
    for version, name in ((4, "protected4"), (6, "protected6")):
        keys = [_lpm_key(n) for n in nets if n.version == version]
        _write_set(dataplane.table(name), {bytes(k): k for k in keys})
    bits = 0
    if on:
        bits = layout.MEASURE_SECURITY
        bits |= layout.MEASURE_PEERS if peers is not None else 0
        bits |= layout.MEASURE_PROTECTED if nets else 0
    dataplane.set_measure_bits(BITS, bits)
    # slots vouch for what passed under the old lists: decided anew
    dataplane.bump_rules_generation()


def checks_on(dataplane: Any) -> bool:
    """Whether the data path runs the checks now."""
    return bool(dataplane.measure_bits() & layout.MEASURE_SECURITY)


def session_value(networks: Iterable[IpNetwork]) -> layout.TeidSession:
    """A learned session's addresses as teid_session holds them (its first
    IPv4 address and IPv6 prefix; flags 0 without either)."""
    value = layout.TeidSession()
    for net in networks:
        if net.version == 4 and not value.flags & layout.TEID_SESSION_V4:
            value.flags |= layout.TEID_SESSION_V4
            ctypes.memmove(value.ue4, net.network_address.packed, 4)
        elif net.version == 6 and not value.flags & layout.TEID_SESSION_V6:
            value.flags |= layout.TEID_SESSION_V6
            value.ue6_prefixlen = net.prefixlen
            ctypes.memmove(value.ue6, net.network_address.packed, 16)
    return value


def write_session(dataplane: Any, teid: int, networks: Iterable[IpNetwork]) -> bool:
    """One of a session's TEIDs, with its addresses; False when the map is
    full."""
    value = session_value(networks)
    try:
        dataplane.table("teid_session")[ctypes.c_uint32(teid)] = value
    except Exception:  # bcc raises a bare Exception when the map is full
        return False
    return True


def remove_session(dataplane: Any, teid: int) -> None:
    with contextlib.suppress(KeyError):
        del dataplane.table("teid_session")[ctypes.c_uint32(teid)]


def read_counts(dataplane: Any, slices: int = layout.MAX_SLICES) -> np.ndarray:
    """security_stats summed over CPUs: [slice, kind] for slice ids below
    `slices`."""
    array = dataplane.mapped("security_stats", ctypes.c_uint64)
    summed = array.summed_words(slices * layout.SEC_KINDS)[:, 0]
    return np.asarray(summed).reshape(slices, layout.SEC_KINDS).copy()


@dataclass(frozen=True)
class Seen:
    """One security_seen entry: a kind seen for a TEID and an address."""

    kind: int
    teid: int
    address: IpAddress  # the outer source, or the inner one for spoofing
    peer: IpAddress  # the outer source of the last frame
    slice_id: int
    first_ns: int
    last_ns: int
    count: int


def drain_seen(dataplane: Any) -> list[Seen]:
    """Every security_seen entry, each removed as it is read, in one call
    (the agent keeps what it needs of them)."""
    table = dataplane.table("security_seen")
    fd = dataplane.map_fd("security_seen")
    key_size = ctypes.sizeof(layout.SecuritySeenKey)
    found: list[Seen] = []
    for raw_key in list(table):
        raw = libbpf.lookup_and_delete_elem(
            fd, bytes(raw_key)[:key_size], ctypes.sizeof(layout.SecuritySeen)
        )
        if raw is None:
            continue
        key = layout.SecuritySeenKey.from_buffer_copy(bytes(raw_key))
        value = layout.SecuritySeen.from_buffer_copy(raw)
        found.append(
            Seen(
                kind=int(key.kind),
                teid=int(key.teid),
                address=address_of(bytes(key.addr)),
                peer=address_of(bytes(value.peer)),
                slice_id=int(value.slice_id),
                first_ns=int(value.first_ns),
                last_ns=int(value.last_ns),
                count=int(value.count),
            )
        )
    return found
