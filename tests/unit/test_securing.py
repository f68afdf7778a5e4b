"""The agent's security part without a kernel: the checks set at start with
the configured peers and protected prefixes, the far tunnel ends of learned
sessions added as peers when the session table changes (and kept), the
interval's detections put into its snapshot with the kernel's monotonic
times turned into unix times, and the detector taken over by the next agent
from the state file. The data path is a recording stand-in (the kernel side
is tests/kernel/test_security.py)."""

from __future__ import annotations

import ctypes
import ipaddress
from pathlib import Path
from typing import Any, ClassVar

from sauron.abi import layout
from sauron.agent.securing import FORMAT, Securing
from sauron.agent.state_file import StateFile
from sauron.bpf.security import Seen
from sauron.control.record import ControlSession, Tunnel
from sauron.kpi.records import Snapshot
from sauron.security.detect import TEID_SCAN
from sauron.security.settings import SecurityConfig

GNB, OTHER_GNB = "192.0.2.1", "192.0.2.9"


class Recorded:
    """Stands in for the data path: what set_checks wrote, through the
    calls it makes (the maps themselves are the kernel test's)."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[bytes, Any]] = {}
        self.bits = 0
        self.generations = 0

    def table(self, name: str) -> Any:
        return _Table(self.tables.setdefault(name, {}), name)

    def set_measure_bits(self, owned: int, bits: int) -> None:
        self.bits = (self.bits & ~owned) | (bits & owned)

    def bump_rules_generation(self) -> int:
        self.generations += 1
        return self.generations

    def peers(self) -> set[str]:
        return {
            str(ipaddress.IPv6Address(k).ipv4_mapped or ipaddress.IPv6Address(k))
            for k in self.tables["known_peers"]
        }


class _Table:
    """A map as bcc gives it: typed keys, iterated and written by key."""

    KEYS: ClassVar[dict[str, type[ctypes.Structure]]] = {
        "known_peers": layout.UeKey,
        "protected4": layout.Ipv4LpmKey,
        "protected6": layout.Ipv6LpmKey,
    }

    def __init__(self, store: dict[bytes, Any], name: str) -> None:
        self.store = store
        self.Key = self.KEYS[name]

    def __iter__(self) -> Any:
        return iter([self.Key.from_buffer_copy(k) for k in self.store])

    def __setitem__(self, key: Any, value: Any) -> None:
        self.store[bytes(key)] = value

    def __delitem__(self, key: Any) -> None:
        del self.store[bytes(key)]


def session(seid: int, gnb: str) -> ControlSession:
    return ControlSession(
        source="pfcp",
        key=("10.0.0.1", seid),
        tunnels=[
            Tunnel(0x100 + seid, "192.0.2.2", "access", True),
            Tunnel(seid, gnb, "access", False),
        ],
        ue_addresses=[f"10.45.0.{seid}"],
    )


def scan(at_ns: int, teids: range, source: str = "203.0.113.5") -> list[Seen]:
    address = ipaddress.ip_address(source)
    return [Seen(layout.SEC_UNKNOWN_TEID, t, address, address, 1, at_ns, at_ns, 2) for t in teids]


def test_checks_are_set_and_learned_peers_join_the_configured() -> None:
    dp = Recorded()
    sessions: list[ControlSession] = []
    version = [0]
    config = SecurityConfig(peers=[GNB], protected=["10.100.0.0/16", "2001:db8::/32"])
    securing = Securing(
        config, dp, 1.0, sessions=lambda: sessions, version=lambda: version[0], drain=lambda _: []
    )
    assert dp.bits == layout.MEASURE_SECURITY | layout.MEASURE_PEERS | layout.MEASURE_PROTECTED
    assert dp.peers() == {GNB}
    assert len(dp.tables["protected4"]) == 1 and len(dp.tables["protected6"]) == 1
    sessions.append(session(1, OTHER_GNB))
    securing.on_snapshot(Snapshot(time=10.0, interval_s=1.0, slices={}))
    assert dp.peers() == {GNB}  # the table's version did not move: not read
    version[0] += 1
    securing.on_snapshot(Snapshot(time=11.0, interval_s=1.0, slices={}))
    assert dp.peers() == {GNB, OTHER_GNB}
    sessions.clear()  # the session ended; its gNB stays a peer
    version[0] += 1
    securing.on_snapshot(Snapshot(time=12.0, interval_s=1.0, slices={}))
    assert dp.peers() == {GNB, OTHER_GNB}
    assert securing.status()["peers_learned"] == [OTHER_GNB]


def test_no_peer_configured_nor_learned_checks_no_peer() -> None:
    dp = Recorded()
    Securing(SecurityConfig(), dp, 1.0, drain=lambda _: [])
    assert dp.bits == layout.MEASURE_SECURITY
    off = Recorded()
    Securing(SecurityConfig(enabled=False), off, 1.0, drain=lambda _: [])
    assert off.bits == 0


def test_detections_go_into_the_snapshot_and_to_the_next_agent(tmp_path: Path) -> None:
    keep = StateFile(tmp_path / "security", FORMAT)
    batches = [scan(5_000_000_000, range(10)), scan(5_400_000_000, range(10, 20)), []]

    def drain(_: Any) -> list[Seen]:
        return batches.pop(0) if batches else []

    # monotonic 100 s is unix 1 000 100 s: kernel times are shifted by 1e6 s
    first = Securing(
        SecurityConfig(),
        Recorded(),
        1.0,
        keep=keep,
        drain=drain,
        monotonic=lambda: 100.0,
        wall=lambda: 1_000_100.0,
    )
    snap = Snapshot(time=1_000_005.2, interval_s=1.0, slices={})
    first.on_snapshot(snap)
    assert snap.security_events == []  # 10 distinct TEIDs: not yet a scan
    snap = Snapshot(time=1_000_005.6, interval_s=1.0, slices={})
    first.on_snapshot(snap)
    (event,) = snap.security_events
    assert (event.kind, event.distinct, event.count, event.peer) == (
        TEID_SCAN,
        20,
        40,
        "203.0.113.5",
    )
    assert event.first_seen == 1_000_005.0 and event.ongoing
    # the next agent goes on with the same event
    more = [scan(9_000_000_000, range(20, 25))]
    second = Securing(
        SecurityConfig(),
        Recorded(),
        1.0,
        keep=keep,
        drain=lambda _: more.pop() if more else [],
        monotonic=lambda: 100.0,
        wall=lambda: 1_000_100.0,
    )
    snap = Snapshot(time=1_000_009.5, interval_s=1.0, slices={})
    second.on_snapshot(snap)
    (grown,) = snap.security_events
    assert (grown.id, grown.distinct, grown.count) == (event.id, 25, 50)
    assert [e.id for e in second.events()] == [event.id]


def test_a_tunnel_end_that_is_no_address_is_left_out() -> None:
    """An SMF feed may give a far end by name: it is no peer, and the
    checks go on (the detections too)."""
    dp = Recorded()
    named = session(2, GNB)
    named.tunnels[1] = Tunnel(2, "gnb1.ran", "access", False)
    sessions = [named, session(3, OTHER_GNB)]
    drained: list[int] = []
    securing = Securing(
        SecurityConfig(),
        dp,
        1.0,
        sessions=lambda: sessions,
        version=lambda: 1,
        drain=lambda _: drained.append(1) or [],
    )
    securing.on_snapshot(Snapshot(time=10.0, interval_s=1.0, slices={}))
    assert dp.peers() == {OTHER_GNB} and drained == [1]


def test_learned_peers_are_kept_across_a_restart(tmp_path: Path) -> None:
    """A gNB learned from a session that has ended since is still a peer
    for the next agent (else its every frame would count as unknown_peer,
    or with no peer configured the check would stop)."""
    keep = StateFile(tmp_path / "security", FORMAT)
    sessions = [session(1, OTHER_GNB)]
    first = Securing(
        SecurityConfig(),
        Recorded(),
        1.0,
        sessions=lambda: sessions,
        version=lambda: 1,
        keep=keep,
        drain=lambda _: [],
    )
    first.on_snapshot(Snapshot(time=10.0, interval_s=1.0, slices={}))
    dp = Recorded()
    second = Securing(
        SecurityConfig(),
        dp,
        1.0,
        sessions=lambda: [],
        version=lambda: 1,
        keep=keep,
        drain=lambda _: [],
    )
    assert dp.peers() == {OTHER_GNB}
    assert dp.bits & layout.MEASURE_PEERS
    assert second.status()["peers_learned"] == [OTHER_GNB]
    # learning turned off: the next agent takes none over
    off = Recorded()
    Securing(SecurityConfig(learn_peers=False), off, 1.0, keep=keep, drain=lambda _: [])
    assert not off.bits & layout.MEASURE_PEERS
