"""The security checks in the kernel, frame by frame: uplink G-PDUs through
the real N3 ingress programs (XDP and TC, BPF_PROG_TEST_RUN), each kind
mixed into normal traffic, with a learned session (PFCP's addresses) and
with only the catalog's TEID ranges and UE subnets. The counts per slice and
kind are exact, each frame's failed checks are those the test built into
it, and the frames pass unchanged. Normal frames of a known session, once
vouched for, take the cheap way: their TEID's slot says so."""

from __future__ import annotations

import ipaddress
from collections import Counter

import pytest
from frames import gtpu_raw, outer, pdu_session_container
from scapy.layers.inet import IP, UDP
from scapy.packet import Packet, Raw

from sauron.abi import layout
from sauron.bpf import libbpf
from sauron.bpf.loader import DataPlane
from sauron.bpf.measurements import MeasureSettings, apply_settings
from sauron.bpf.rules import program_catalog
from sauron.bpf.security import address_of, drain_seen, read_counts, set_checks
from sauron.catalog import Catalog
from sauron.control.record import ControlSession, Tunnel
from sauron.control.registry import SessionRegistry
from sauron.control.rules import LearnedRules

pytestmark = [pytest.mark.kernel]

GNB, UPF, STRANGER = "192.0.2.1", "192.0.2.2", "203.0.113.7"
SERVER = "198.51.100.9"
#: a learned eMBB session: its TEID and its one address
SESSION_TEID, SESSION_UE = 0x10100, "10.45.1.1"
#: a TEID of URLLC's catalog range, no session known
RANGE_TEID = 0x20005
UNKNOWN_TEID = 0x00500001
CORE = [ipaddress.ip_network("192.0.2.0/24"), ipaddress.ip_network("10.100.0.0/16")]
SPOOFED, UNKNOWN, IN_GTP, TO_CORE, PEER = (
    layout.SEC_UE_SOURCE_SPOOFED,
    layout.SEC_UNKNOWN_TEID,
    layout.SEC_GTP_IN_GTP,
    layout.SEC_INNER_TO_CORE,
    layout.SEC_UNKNOWN_PEER,
)


def uplink(teid: int, inner: Packet, peer: str = GNB) -> bytes:
    ext = [(0x85, pdu_session_container(9, uplink=True))]
    return outer(gtpu_raw(teid, payload=bytes(inner), extensions=ext), src=peer, dst=UPF)


def udp(src: str, dst: str = SERVER, dport: int = 5000, payload: bytes = bytes(24)) -> Packet:
    return IP(src=src, dst=dst) / UDP(sport=40000, dport=dport) / Raw(payload)


def learned(dp: DataPlane, catalog: Catalog) -> SessionRegistry:
    registry = SessionRegistry(catalog, LearnedRules(dp, catalog))
    registry.upsert(
        ControlSession(
            source="pfcp",
            key=("10.0.0.1", 1),
            snssai=(1, 1),
            tunnels=[Tunnel(SESSION_TEID, UPF, "access", True)],
            ue_addresses=[SESSION_UE],
        )
    )
    registry.flush()
    return registry


def forget(registry: SessionRegistry) -> None:
    for session in list(registry.sessions.values()):
        registry.remove(session)
    registry.flush()


#: (name, frame, the slice it counts in, the checks it fails)
def cases(embb: int, urllc: int) -> list[tuple[str, bytes, int, set[int]]]:
    inner_gtpu = gtpu_raw(0x42, payload=bytes(IP(src="10.9.9.9", dst="10.100.0.5") / UDP()))
    return [
        ("normal", uplink(SESSION_TEID, udp(SESSION_UE)), embb, set()),
        ("normal, catalog range", uplink(RANGE_TEID, udp("10.46.0.9")), urllc, set()),
        ("another UE of the slice", uplink(SESSION_TEID, udp("10.45.1.2")), embb, {SPOOFED}),
        ("eMBB's UE on URLLC's TEID", uplink(RANGE_TEID, udp("10.45.0.9")), urllc, {SPOOFED}),
        ("a public source", uplink(RANGE_TEID, udp("8.8.8.8")), urllc, {SPOOFED}),
        # classified by the inner source's UE subnet after no TEID rule
        ("unknown TEID", uplink(UNKNOWN_TEID, udp("10.45.7.7")), embb, {UNKNOWN}),
        ("GTP-U in GTP-U", uplink(SESSION_TEID, udp(SESSION_UE, "10.100.0.5", 2152,
                                                     inner_gtpu)), embb, {IN_GTP, TO_CORE}),
        ("GTP-C v2 in GTP-U", uplink(SESSION_TEID, udp(SESSION_UE, dport=2123,
                                                      payload=bytes([0x48, 32, 0, 8]) + bytes(8))),
         embb, {IN_GTP}),
        # UDP to 2152 that is no GTP (version 0): not counted
        ("port 2152, no GTP", uplink(SESSION_TEID, udp(SESSION_UE, dport=2152,
                                                       payload=bytes(16))), embb, set()),
        ("to the UPF's N3 address", uplink(SESSION_TEID, udp(SESSION_UE, UPF)), embb, {TO_CORE}),
        ("from a stranger", uplink(SESSION_TEID, udp(SESSION_UE), peer=STRANGER), embb, {PEER}),
        # no TEID rule, no UE subnet: its QFI (9) is eMBB's
        ("all at once", uplink(UNKNOWN_TEID, udp("8.8.4.4", "10.100.1.1", 2152, inner_gtpu),
                               peer=STRANGER), embb, {UNKNOWN, IN_GTP, TO_CORE, PEER}),
    ]  # fmt: skip


@pytest.mark.parametrize("hook", ["xdp", "tc"])
def test_each_check_counts_its_frames_per_slice_and_kind(
    recording_dataplane: DataPlane, catalog: Catalog, hook: str
) -> None:
    dp = recording_dataplane
    dp.reset_counters()
    program_catalog(dp, catalog)
    apply_settings(dp, MeasureSettings.off())
    embb, urllc = catalog.get("embb"), catalog.get("urllc")
    assert embb is not None and urllc is not None
    registry = learned(dp, catalog)
    set_checks(dp, True, peers=[ipaddress.ip_address(GNB)], protected=CORE)
    fd = dp.program_fd(layout.POINT_N3_INGRESS, hook=hook)
    expected: Counter[tuple[int, int]] = Counter()
    try:
        for rounds in range(3):  # again and again: slots that vouch change nothing
            for name, frame, slice_id, failed in cases(embb.id, urllc.id):
                run = libbpf.test_run(fd, frame)
                assert run.retval == dp.pass_verdict(layout.POINT_N3_INGRESS, hook=hook)
                assert run.data_out == frame, name
                result = dp.last_result()
                got = {k for k in range(layout.SEC_KINDS) if result.security & (1 << k)}
                assert (got, int(result.slice_id)) == (failed, slice_id), (name, rounds)
                if failed:
                    assert str(address_of(bytes(result.peer))) in (GNB, STRANGER), name
                expected.update((slice_id, kind) for kind in failed)
        counts = read_counts(dp)
        found = {
            (s, k): int(counts[s, k])
            for s in range(layout.MAX_SLICES)
            for k in range(layout.SEC_KINDS)
            if counts[s, k]
        }
        assert found == dict(expected)

        # what the detections read: who sent what to which TEID
        seen = {(e.kind, e.teid, str(e.address)): e for e in drain_seen(dp)}
        assert seen[(UNKNOWN, UNKNOWN_TEID, GNB)].count == 3
        assert seen[(UNKNOWN, UNKNOWN_TEID, STRANGER)].count == 3
        spoof = seen[(SPOOFED, SESSION_TEID, "10.45.1.2")]
        assert (spoof.count, spoof.slice_id, str(spoof.peer)) == (3, embb.id, GNB)
        assert seen[(PEER, SESSION_TEID, STRANGER)].count == 3
        assert drain_seen(dp) == []  # read once
    finally:
        set_checks(dp, False)
        forget(registry)


def test_checks_off_count_nothing_and_peers_unlisted_are_not_checked(
    recording_dataplane: DataPlane, catalog: Catalog
) -> None:
    dp = recording_dataplane
    dp.reset_counters()
    program_catalog(dp, catalog)
    apply_settings(dp, MeasureSettings.off())
    fd = dp.program_fd(layout.POINT_N3_INGRESS)
    stranger = uplink(RANGE_TEID, udp("10.46.0.9", UPF), peer=STRANGER)
    spoofed = uplink(RANGE_TEID, udp("8.8.8.8"))
    for frame in (stranger, spoofed):
        libbpf.test_run(fd, frame)
    assert not read_counts(dp).any()
    # on, with no peer list and no protected prefix: only the source is checked
    set_checks(dp, True)
    try:
        for frame in (stranger, spoofed):
            libbpf.test_run(fd, frame)
        counts = read_counts(dp)
        urllc = catalog.get("urllc")
        assert urllc is not None
        assert int(counts.sum()) == 1 and counts[urllc.id, SPOOFED] == 1
        # the agent's measurement settings, rewritten, leave the checks on
        apply_settings(dp, MeasureSettings())
        libbpf.test_run(fd, spoofed)
        assert read_counts(dp)[urllc.id, SPOOFED] == 2
    finally:
        set_checks(dp, False)


def test_a_vouched_source_costs_no_lookup(recording_dataplane: DataPlane, catalog: Catalog) -> None:
    """The second frame of a session from its own address is not handed to
    the checks at all: the TEID's slot vouches for it. (The checks' program
    writes the outer source it read into the frame's result; a frame it
    never saw leaves it empty.)"""
    dp = recording_dataplane
    dp.reset_counters()
    program_catalog(dp, catalog)
    apply_settings(dp, MeasureSettings.off())
    registry = learned(dp, catalog)
    set_checks(dp, True, peers=[ipaddress.ip_address(GNB)])
    fd = dp.program_fd(layout.POINT_N3_INGRESS)

    def checked(frame: bytes) -> bool:
        libbpf.test_run(fd, frame)
        return bytes(dp.last_result().peer) != bytes(16)

    try:
        frame = uplink(SESSION_TEID, udp(SESSION_UE))
        assert checked(frame)  # the first: checked, and the slot vouches
        assert not checked(frame)
        assert not checked(uplink(SESSION_TEID, udp(SESSION_UE, "198.51.100.77")))
        # another source, another peer, a GTP port: checked again
        assert checked(uplink(SESSION_TEID, udp("10.45.1.2")))
        assert checked(uplink(SESSION_TEID, udp(SESSION_UE), peer=STRANGER))
        assert checked(uplink(SESSION_TEID, udp(SESSION_UE, dport=2123)))
        assert not checked(frame)
        # new rules: decided anew
        dp.bump_rules_generation()
        assert checked(frame)
    finally:
        set_checks(dp, False)
        forget(registry)


def test_the_sessions_own_their_teids_and_a_change_is_seen_at_once(
    recording_dataplane: DataPlane, catalog: Catalog
) -> None:
    """A TEID a new session took stays known when the old session goes; a
    session no slice took (its TEID in no catalog range) still makes its
    TEID known, and when its address changes, the slot that vouched for the
    old one does not any more."""
    dp = recording_dataplane
    dp.reset_counters()
    program_catalog(dp, catalog)
    apply_settings(dp, MeasureSettings.off())
    registry = SessionRegistry(catalog, LearnedRules(dp, catalog))
    teid = 0x00500100  # in no catalog range

    def session(seid: int, ue: str) -> ControlSession:
        return ControlSession(
            source="pfcp",
            key=("10.0.0.1", seid),
            snssai=(9, 9),  # no slice of the catalog, nor is its address
            tunnels=[Tunnel(teid, UPF, "access", True)],
            ue_addresses=[ue],
        )

    set_checks(dp, True)
    fd = dp.program_fd(layout.POINT_N3_INGRESS)

    def failed(source: str) -> int:
        libbpf.test_run(fd, uplink(teid, udp(source)))
        return int(dp.last_result().security)

    try:
        old, new = session(1, "10.60.2.1"), session(2, "10.60.2.2")
        registry.upsert(old)
        registry.flush()
        assert old.slice_id is None
        assert failed("10.60.2.1") == 0 and failed("10.60.2.1") == 0  # vouched
        registry.upsert(new)  # the UPF gave the TEID to another session
        registry.flush()
        assert failed("10.60.2.1") == 1 << SPOOFED
        registry.remove(old)
        registry.flush()
        assert failed("10.60.2.2") == 0
        assert failed("10.60.9.9") == 1 << SPOOFED
    finally:
        set_checks(dp, False)
        forget(registry)


def test_lists_are_replaced_and_the_agent_reads_counts_and_switch(
    recording_dataplane: DataPlane, catalog: Catalog
) -> None:
    """A new peer list or protected list replaces the old one (what both
    hold stays); the agent's every-interval reading carries the counts per
    slice and kind and whether the checks run."""
    from sauron.bpf.maps import read_counters

    dp = recording_dataplane
    dp.reset_counters()
    program_catalog(dp, catalog)
    apply_settings(dp, MeasureSettings.off())
    a, b, c = (ipaddress.ip_address(x) for x in ("192.0.2.1", "192.0.2.5", "2001:db8::5"))
    nets = [ipaddress.ip_network("10.100.0.0/16"), ipaddress.ip_network("2001:db8:c0::/48")]

    def peers() -> set[str]:
        return {str(address_of(bytes(k))) for k in dp.table("known_peers")}

    def entries(name: str) -> int:
        return sum(1 for _ in dp.table(name))  # an LPM trie has no len()

    try:
        set_checks(dp, True, peers=[a, b], protected=nets)
        assert peers() == {"192.0.2.1", "192.0.2.5"}
        assert entries("protected4") == 1 and entries("protected6") == 1
        set_checks(dp, True, peers=[b, c], protected=nets[:1])
        assert peers() == {"192.0.2.5", "2001:db8::5"}
        assert entries("protected4") == 1 and entries("protected6") == 0
        assert read_counters(dp, slices=catalog.slice_rows).security_on
        libbpf.test_run(
            dp.program_fd(layout.POINT_N3_INGRESS), uplink(UNKNOWN_TEID, udp("10.45.0.1"))
        )
        reading = read_counters(dp, slices=catalog.slice_rows)
        assert reading.security.shape == (catalog.slice_rows, layout.SEC_KINDS)
        # from 192.0.2.1, no longer a peer
        assert int(reading.security[:, PEER].sum()) == 1
        assert int(reading.security[:, UNKNOWN].sum()) == 1
    finally:
        set_checks(dp, False)
    assert not read_counters(dp, slices=catalog.slice_rows).security_on


def test_the_benchmarks_frames_take_the_path_their_names_say(
    recording_dataplane: DataPlane, catalog: Catalog
) -> None:
    """Each security case of bench/per_packet.py measures what it is named
    for: a vouched frame never reaches the checks, and each failing one
    fails exactly its own check (a figure of the wrong path would be a
    wrong figure)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # bench/ is the checkout's
    from bench.per_packet import SECURITY_CASES, set_case

    dp = recording_dataplane
    dp.reset_counters()
    program_catalog(dp, catalog)
    apply_settings(dp, MeasureSettings.off())
    fd = dp.program_fd(layout.POINT_N3_INGRESS)
    expected = {
        "xdp_n3_ul_gpdu_security": (0, False),
        "xdp_n3_ul_gpdu_security_peers": (0, False),
        "xdp_n3_ul_gpdu_security_spoofed": (1 << SPOOFED, True),
        "xdp_n3_ul_gpdu_security_unknown_teid": (1 << UNKNOWN, True),
        "xdp_n3_ul_gpdu_security_gtp_in_gtp": (1 << IN_GTP, True),
        "xdp_n3_ul_gpdu_security_unknown_peer": (1 << PEER, True),
        "xdp_n3_ul_gpdu_security_protected": (0, True),
    }
    assert expected.keys() == SECURITY_CASES.keys()
    try:
        for name in SECURITY_CASES:
            frame = set_case(dp, name)
            libbpf.test_run(fd, frame)  # the first may be checked to vouch
            libbpf.test_run(fd, frame)
            result = dp.last_result()
            checked = bytes(result.peer) != bytes(16)
            assert (int(result.security), checked) == expected[name], name
    finally:
        set_checks(dp, False)
