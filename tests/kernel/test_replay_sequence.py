"""`sauron replay --json` reports GTP-U sequence loss per tunnel: exactly
what was injected into a synthetic capture, and on public captures what an
independent model makes of the sequence numbers tshark reads."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA
from frames import gtpu_raw, outer, pdu_session_container
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from sauron.abi import layout
from sauron.bpf.loader import DataPlane
from sauron.catalog import Catalog
from sauron.commands.replay import replay_capture

pytestmark = [pytest.mark.kernel]


def g_pdu(teid: int, seq: int, uplink: bool, n: int) -> Ether:
    inner = IP(src="10.45.0.2", dst="198.51.100.9", id=n) / UDP(sport=1, dport=2) / Raw(b"p")
    ext = [(0x85, pdu_session_container(9, uplink=uplink))]
    src, dst = ("192.0.2.1", "192.0.2.2") if uplink else ("192.0.2.2", "192.0.2.1")
    raw = gtpu_raw(teid, payload=bytes(inner), seq=seq, extensions=ext)
    return Ether(outer(raw, src=src, dst=dst))


def test_injected_loss_reorder_and_duplicates(
    tmp_path: Path, recording_dataplane: DataPlane, catalog: Catalog
) -> None:
    ul = [0, 1, 2, 5, 6, 4, 7, 7, 8]  # 3 lost, 4 late, 7 twice
    dl = [65534, 65535, 0, 2]  # across the wrap, lost 1
    frames = [g_pdu(0x10002, s, True, i) for i, s in enumerate(ul)]
    frames += [g_pdu(0x80000001, s, False, 100 + i) for i, s in enumerate(dl)]
    path = tmp_path / "seq.pcap"
    wrpcap(str(path), frames)
    report = replay_capture(path, catalog, recording_dataplane)
    by_tunnel = {(r["teid"], r["direction"]): r for r in report["sequence"]}
    assert by_tunnel == {
        ("0x00010002", "uplink"): {
            "teid": "0x00010002",
            "direction": "uplink",
            "receiver": "192.0.2.2",
            "slice": "embb",
            "received": 8,
            "lost": 1,
            "reordered": 1,
            "duplicates": 1,
        },
        ("0x80000001", "downlink"): {
            "teid": "0x80000001",
            "direction": "downlink",
            "receiver": "192.0.2.1",
            "slice": "unclassified",
            "received": 4,
            "lost": 1,
            "reordered": 0,
            "duplicates": 0,
        },
    }


def reference_sequence(numbers: list[int]) -> dict[str, int]:
    """An independent model over extended (unwrapped) numbers: a set of what
    arrived per numbering epoch; a jump beyond the dropout/misorder limits
    starts a new epoch."""
    received = lost = reordered = duplicates = 0
    seen: set[int] = set()
    first = highest = None
    for n in numbers:
        if highest is None or first is None:
            first = highest = n
            seen = {n}
            received += 1
            continue
        ahead = (n - highest - 1) & 0xFFFF
        behind = (highest + 1 - n) & 0xFFFF
        if ahead <= layout.SEQ_MAX_DROPOUT:
            ext = highest + 1 + ahead
        elif behind <= layout.SEQ_MAX_MISORDER:
            ext = highest + 1 - behind
        else:  # a new epoch
            lost += (highest - first + 1) - len(seen)
            first = highest = n
            seen = {n}
            received += 1
            continue
        if ext in seen:
            duplicates += 1
            continue
        if ext < highest:
            reordered += 1
        seen.add(ext)
        received += 1
        highest = max(highest, ext)
    if highest is not None and first is not None:
        lost += (highest - first + 1) - len(seen)
    return {"received": received, "lost": lost, "reordered": reordered, "duplicates": duplicates}


def tshark_tunnels(path: Path) -> dict[tuple[str, str], list[int]]:
    out = subprocess.run(
        [
            "tshark",
            "-n",
            "-r",
            str(path),
            "-Y",
            "gtp.flags.s == 1 && gtp.message == 255",
            "-T",
            "fields",
            "-E",
            "occurrence=f",
            "-e",
            "ip.dst",
            "-e",
            "ipv6.dst",
            "-e",
            "gtp.teid",
            "-e",
            "gtp.seq_number",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    tunnels: dict[tuple[str, str], list[int]] = {}
    for line in out.splitlines():
        v4, v6, teid, seq = line.split("\t")
        tunnels.setdefault((v4 or v6, f"0x{int(teid, 0):08x}"), []).append(int(seq, 0))
    return tunnels


@pytest.mark.tshark
@pytest.mark.parametrize("name", ["arkime_gtpu_seqnum.pcap", "ndpi_seqnum_truncated.pcapng"])
def test_public_captures_against_tshark(
    name: str, recording_dataplane: DataPlane, catalog: Catalog
) -> None:
    path = DATA / name
    report = replay_capture(path, catalog, recording_dataplane)
    got: dict[tuple[str, str], dict[str, Any]] = {
        (r["receiver"], r["teid"]): {
            k: r[k] for k in ("received", "lost", "reordered", "duplicates")
        }
        for r in report["sequence"]
    }
    want = {key: reference_sequence(numbers) for key, numbers in tshark_tunnels(path).items()}
    assert want, "the capture has sequence numbers"
    assert got == want
