"""Session activity over one interval: which TEIDs or UE addresses carried
packets, per slice, and the ones that carried the most bytes."""

from __future__ import annotations

import heapq
import ipaddress
from dataclasses import dataclass, field

from sauron.bpf import layout
from sauron.bpf.maps import Session, delta

UL, DL = layout.DIR_UPLINK, layout.DIR_DOWNLINK

#: sessions kept per slice and kind; what the top-sessions route can return
TOP_SESSIONS = 100


def ue_address_text(addr: bytes) -> str:
    """A UE address as the maps hold it (IPv6, IPv4 mapped) in its usual form."""
    ip = ipaddress.IPv6Address(addr)
    return str(ip.ipv4_mapped) if ip.ipv4_mapped else str(ip)


@dataclass(frozen=True)
class SessionVolume:
    """What one session carried in one interval."""

    teid: int | None  # None for a UE-address session
    ue_address: str | None
    qfi: int | None
    uplink_packets: int
    downlink_packets: int
    uplink_bytes: int
    downlink_bytes: int

    @property
    def bytes(self) -> int:
        return self.uplink_bytes + self.downlink_bytes


@dataclass
class SessionActivity:
    #: slice id -> sessions whose counters moved
    active: dict[int, int] = field(default_factory=dict)
    #: slice id -> up to TOP_SESSIONS sessions, most bytes first
    top: dict[int, list[SessionVolume]] = field(default_factory=dict)


def _ue_of(s: Session, by_teid: bool) -> str | None:
    if not by_teid:
        return ue_address_text(s.key)
    return ue_address_text(s.ue_addr) if s.ue_addr is not None else None


def session_activity(
    previous: list[Session], current: list[Session], by_teid: bool, top_n: int = TOP_SESSIONS
) -> SessionActivity:
    """A session missing from the previous reading, or whose counts went
    down (evicted and seen anew), counts from zero."""
    before = {s.key: s for s in previous}
    result = SessionActivity()
    moved: dict[int, list[tuple[int, Session, list[int], list[int]]]] = {}
    for s in current:
        old = before.get(s.key)
        packets = [delta(s.packets[d], old.packets[d] if old else 0) for d in (UL, DL)]
        if packets == [0, 0]:
            continue
        octets = [delta(s.bytes[d], old.bytes[d] if old else 0) for d in (UL, DL)]
        result.active[s.slice_id] = result.active.get(s.slice_id, 0) + 1
        moved.setdefault(s.slice_id, []).append((octets[0] + octets[1], s, packets, octets))
    for slice_id, rows in moved.items():
        result.top[slice_id] = [
            SessionVolume(
                teid=int.from_bytes(s.key, "little") if by_teid else None,
                ue_address=_ue_of(s, by_teid),
                qfi=s.qfi if by_teid else None,
                uplink_packets=packets[0],
                downlink_packets=packets[1],
                uplink_bytes=octets[0],
                downlink_bytes=octets[1],
            )
            for _, s, packets, octets in heapq.nlargest(top_n, rows, key=lambda r: r[0])
        ]
    return result
