"""`sauron replay` over captures with every security kind mixed into
normal traffic: one with the PFCP that set its session up (the session's
address and TEID, the gNB as the known peer), one with only the catalog's
TEID ranges and UE subnets. Counts per slice and kind are exact, and so are
the detections, timed by the capture: a TEID scan and a spoofing UE. The
shared public captures raise only what a catalog that does not know their
TEIDs and addresses makes them raise: with one that knows them all, none."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import CAPTURES, capture_path
from frames import gtpu_raw, outer, pdu_session_container
from pfcp_frames import GNB, UPF_N3, open5gs_session, write_capture
from scapy.layers.inet import IP, UDP
from scapy.packet import Packet, Raw

from sauron.bpf.loader import DataPlane
from sauron.catalog import Catalog, parse_catalog
from sauron.commands.replay import ReplayOptions, replay_capture

pytestmark = [pytest.mark.kernel]

UE, SERVER, STRANGER = "10.45.3.3", "198.51.100.9", "203.0.113.9"
SESSION_TEID, GNB_TEID = 0x2A, 0x01
CATALOG_TEID = 0x10005  # eMBB's range
CORE = "10.10.0.0/16"  # the UPF's N3 and N4, the SMF


def uplink(teid: int, inner: Packet, peer: str = GNB) -> bytes:
    ext = [(0x85, pdu_session_container(1, uplink=True))]
    return outer(gtpu_raw(teid, payload=bytes(inner), extensions=ext), src=peer, dst=UPF_N3)


def downlink(n: int) -> bytes:
    inner = IP(src=SERVER, dst=UE, id=n) / UDP(sport=5000, dport=40000) / Raw(b"down")
    ext = [(0x85, pdu_session_container(1, uplink=False))]
    return outer(gtpu_raw(GNB_TEID, payload=bytes(inner), extensions=ext), src=UPF_N3, dst=GNB)


def udp(src: str, dst: str = SERVER, dport: int = 5000, payload: bytes = b"up") -> Packet:
    return IP(src=src, dst=dst) / UDP(sport=40000, dport=dport) / Raw(payload)


def traffic(teid: int) -> list[bytes]:
    """Normal traffic of the session on `teid`, with every kind mixed in."""
    frames: list[bytes] = []
    gtp = gtpu_raw(0x77, payload=bytes(udp("10.9.9.9")))
    for n in range(20):
        frames += [uplink(teid, udp(UE)), downlink(n)]
        if n < 5:  # five sources not the UE's: a spoofing UE
            frames.append(uplink(teid, udp(f"10.45.9.{n + 1}")))
        if n < 2:
            frames.append(uplink(teid, udp(UE, "192.0.2.50", 2152, gtp)))  # GTP in GTP-U
            frames.append(uplink(teid, udp(UE, "10.10.3.7")))  # to the UPF's own N3
    frames.append(uplink(teid, udp(UE), peer=STRANGER))
    # a scan: twenty TEIDs no rule knows, from one source, in 20 ms
    frames += [uplink(0x5000 + n, udp(UE), peer=STRANGER) for n in range(20)]
    return frames


def replay(path: Path, dp: DataPlane, catalog: Catalog, **options: Any) -> dict[str, Any]:
    protected = (ipaddress.ip_network(CORE),)
    return replay_capture(path, catalog, dp, ReplayOptions(protected=protected, **options))


@pytest.fixture(scope="module")
def replay_dataplane() -> Any:
    dp = DataPlane()
    yield dp
    dp.close()


def test_a_capture_with_its_pfcp_counts_each_kind_and_detects_the_scan_and_the_spoofing(
    tmp_path: Path, replay_dataplane: DataPlane, catalog: Catalog
) -> None:
    session = open5gs_session((1, 1), "internet", UE, SESSION_TEID, GNB_TEID)
    path = write_capture(tmp_path / "with-pfcp.pcap", session + traffic(SESSION_TEID))
    report = replay(path, replay_dataplane, catalog)
    assert report["sessions"][0]["slice"] == "embb"
    assert report["security"] == {
        "embb": {
            "ue_source_spoofed": 5,
            "unknown_teid": 20,
            "gtp_in_gtp": 2,
            "inner_to_core": 2,
            # the gNB is the session's far end: the stranger is not
            "unknown_peer": 21,
        }
    }
    spoofing, scan = sorted(report["security_events"], key=lambda e: e["kind"])
    assert (scan["kind"], scan["slice"], scan["peer"]) == ("teid_scan", "embb", STRANGER)
    assert (scan["count"], scan["distinct"]) == (20, 20)
    assert scan["teids"] == [f"0x{0x5000 + n:08x}" for n in range(8)]
    # the capture's own clock: the scan's frames are 1 ms apart
    assert scan["last_seen"] - scan["first_seen"] == pytest.approx(0.019, abs=1e-6)
    assert (spoofing["kind"], spoofing["peer"], spoofing["teids"]) == (
        "spoofing_ue",
        GNB,
        [f"0x{SESSION_TEID:08x}"],
    )
    assert (spoofing["count"], spoofing["distinct"]) == (5, 5)


def test_without_pfcp_the_catalog_decides_and_peers_are_checked_only_when_listed(
    tmp_path: Path, replay_dataplane: DataPlane, catalog: Catalog
) -> None:
    path = write_capture(tmp_path / "catalog.pcap", traffic(CATALOG_TEID))
    report = replay(path, replay_dataplane, catalog)
    # the sources 10.45.9.x are eMBB's subnet: no session says whose they are
    assert report["security"] == {"embb": {"unknown_teid": 20, "gtp_in_gtp": 2, "inner_to_core": 2}}
    (scan,) = report["security_events"]
    assert scan["kind"] == "teid_scan" and scan["distinct"] == 20
    listed = replay(path, replay_dataplane, catalog, peers=(ipaddress.ip_address(GNB),))
    assert listed["security"]["embb"]["unknown_peer"] == 21
    # a higher threshold: no scan
    calm = replay(path, replay_dataplane, catalog, scan_threshold=21)
    assert calm["security_events"] == []

    # the command, as an operator runs it
    out = subprocess.run(
        [sys.executable, "-m", "sauron", "replay", str(path), "--json", "--peer", GNB,
         "--protected", CORE],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert (doc["security"], doc["security_events"]) == (
        listed["security"],
        listed["security_events"],
    )
    human = subprocess.run(
        [sys.executable, "-m", "sauron", "replay", str(path)],
        capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    assert "teid_scan from 203.0.113.9 (embb): 20 frames, 20 distinct" in human


def knowing_everything() -> Catalog:
    """One slice that holds every TEID and every address."""
    raw = {
        "slices": [
            {
                "name": "anything",
                "id": 1,
                "snssai": {"sst": 1, "sd": "000001"},
                "teid_ranges": [{"first": 1, "last": 0xFFFFFFFF}],
                "ue_subnets": ["0.0.0.0/0", "::/0"],
            }
        ]
    }
    return parse_catalog(raw, "every TEID and address")


@pytest.mark.parametrize("name", CAPTURES)
def test_shared_captures_raise_only_what_the_catalog_does_not_know(
    name: str, replay_dataplane: DataPlane, catalog: Catalog
) -> None:
    path = capture_path(name)
    report = replay_capture(path, catalog, replay_dataplane)
    # no peer list, no protected prefix: those checks are not made
    kinds = {k for per_slice in report["security"].values() for k in per_slice}
    assert kinds <= {"unknown_teid", "ue_source_spoofed"}, report["security"]
    assert report["security_events"] == []
    if kinds:
        # each count is a TEID or a source the default catalog does not know
        known = replay_capture(path, knowing_everything(), replay_dataplane)
        assert known["security"] == {}, known["security"]
