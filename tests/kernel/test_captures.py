"""`sauron replay` against the world: public captures, counted by tshark in
the same test, must give the same per-message-type, per-TEID and per-QFI
numbers. Files whose licence allows it live in tests/data (see its README);
the others are read from ../shared/captures beside the clone."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import CAPTURES, SHARED_CAPTURES, capture_path
from frames import gtpu
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether

from sauron.bpf.loader import TC, XDP, DataPlane
from sauron.catalog import Catalog
from sauron.commands.replay import ReplayOptions, replay_capture

pytestmark = [pytest.mark.kernel, pytest.mark.tshark]

GTPU_FILTER = (
    'frame.protocols matches "^[a-z0-9]+(:ethertype|:vlan)*:(ip|ipv6):udp:gtp" '
    "&& (udp.srcport==2152 || udp.dstport==2152)"
)
MESSAGE_NAMES = {
    1: "echo_request",
    2: "echo_response",
    26: "error_indication",
    254: "end_marker",
    255: "g_pdu",
}


def tshark_counts(path: Path) -> dict[str, Counter]:
    out = subprocess.run(
        [
            "tshark",
            "-n",
            "-o",
            "ip.defragment:FALSE",
            "-o",
            "ipv6.defragment:FALSE",
            "-r",
            str(path),
            "-Y",
            GTPU_FILTER,
            "-T",
            "fields",
            "-E",
            "occurrence=f",
            "-E",
            "separator=/t",
            "-e",
            "gtp.message",
            "-e",
            "gtp.teid",
            "-e",
            "gtp.ext_hdr.pdu_ses_con.qos_flow_id",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    messages: Counter = Counter()
    teids: Counter = Counter()
    qfis: Counter = Counter()
    for line in out.stdout.splitlines():
        msg, teid, qfi = ([*line.split("\t"), "", "", ""])[:3]
        kind = MESSAGE_NAMES.get(int(msg, 0), "other")
        messages[kind] += 1
        if kind == "g_pdu":
            teids[f"0x{int(teid, 0):08x}"] += 1
            if qfi:
                qfis[str(int(qfi, 0))] += 1
    return {"messages": messages, "teids": teids, "qfi": qfis}


@pytest.fixture(scope="module")
def replay_dataplane() -> DataPlane:
    dp = DataPlane()
    yield dp
    dp.close()


@pytest.mark.parametrize("name", CAPTURES)
def test_replay_agrees_with_tshark(
    replay_dataplane: DataPlane, catalog: Catalog, name: str
) -> None:
    path = capture_path(name)
    report = replay_capture(path, catalog, replay_dataplane)
    truth = tshark_counts(path)
    assert report["gtpu_frames"] == sum(truth["messages"].values())
    assert {k: v for k, v in report["message_types"].items() if v} == dict(truth["messages"])
    assert report["teids"] == dict(truth["teids"])
    assert report["qfi"] == dict(truth["qfi"])
    total_slice_packets = sum(
        e[d]["packets"] for e in report["slices"].values() for d in ("uplink", "downlink")
    )
    assert total_slice_packets == report["gtpu_frames"]


def test_replay_agrees_with_the_manifest_ground_truth(
    replay_dataplane: DataPlane, catalog: Catalog
) -> None:
    """The numbers recorded in groundtruth.json (tshark 4.0.17) hold too,
    anomalies included."""
    truth = json.loads((SHARED_CAPTURES / "groundtruth.json").read_text())
    for name in CAPTURES:
        gt = truth[name]["gtpu"]
        report = replay_capture(capture_path(name), catalog, replay_dataplane)
        assert report["message_types"]["g_pdu"] == gt["g_pdu"], name
        assert len(report["teids"]) == gt["distinct_teids_g_pdu"], name
        assert report["anomalies"].get("inner_not_ip", 0) == gt["g_pdu_inner_not_ip"], name
        assert (
            report["anomalies"].get("outer_first_fragment", 0)
            == gt["gtpu_frames_outer_ipv4_first_fragment"]
        ), name
        assert report["events"]["outer_fragment"] == gt["outer_ipv4_nonfirst_fragment_frames"], name


@pytest.mark.parametrize("name", CAPTURES)
def test_tc_ingress_reports_what_xdp_reports(
    replay_dataplane: DataPlane, catalog: Catalog, name: str
) -> None:
    """N3 ingress has an XDP and a TC program (the cheaper hook differs by
    link): over every capture their whole reports are the same, per slice,
    TEID, QFI, message type, anomaly, session and sequence."""
    path = capture_path(name)
    by_xdp = replay_capture(path, catalog, replay_dataplane, ReplayOptions(hook=XDP))
    by_tc = replay_capture(path, catalog, replay_dataplane, ReplayOptions(hook=TC))
    assert by_xdp["events"]["frames"] > 0
    assert by_tc == by_xdp


def test_replay_cli_json(tmp_path: Path) -> None:
    path = capture_path("open5gs_n3_gtpu_qfi1.pcap")
    out = subprocess.run(
        [sys.executable, "-m", "sauron", "replay", str(path), "--json", "--hook", "tc"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    for key in (
        "frames",
        "gtpu_frames",
        "message_types",
        "teids",
        "qfi",
        "slices",
        "anomalies",
        "direction",
    ):
        assert key in report
    assert report["frames"] == 25 and report["qfi"] == {"1": 20}
    assert (
        report["slices"]["embb"]["uplink"]["packets"]
        + report["slices"]["embb"]["downlink"]["packets"]
        == 20
    )


def test_replay_cli_names_a_hook_the_point_lacks(tmp_path: Path) -> None:
    path = capture_path("open5gs_n3_gtpu_qfi1.pcap")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            *("sauron", "replay", str(path)),
            *("--point", "n3-egress", "--hook", "xdp"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "no program on xdp for n3_egress" in out.stderr, out.stderr


def test_replay_cli_rejects_a_missing_file(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sauron", "replay", str(tmp_path / "nope.pcap")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "no such capture file" in out.stderr


def test_replay_cli_tells_its_progress_and_every_kind_of_frame(tmp_path: Path) -> None:
    """A capture that takes more than a second: progress lines on stderr
    (piped: a line each second), the report on stdout alone, and the human
    table counting every kind of frame, GTP-U or not."""
    inner = IP(src="10.45.0.1", dst="198.51.100.1") / UDP(sport=4000, dport=53) / b"q"
    g_pdu = gtpu(inner, 0x00010001, uplink=True)
    arp = bytes(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP())
    path = tmp_path / "large.pcap"
    records = []
    for n in range(60_000):  # two G-PDUs, then an ARP frame
        frame = arp if n % 3 == 2 else g_pdu
        records.append(struct.pack("<IIII", 1_700_000_000, n, len(frame), len(frame)) + frame)
    # the classic pcap file header: Ethernet, microseconds
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + b"".join(records))
    out = subprocess.run(
        [sys.executable, "-m", "sauron", "replay", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    progress = [line for line in out.stderr.splitlines() if "frames run in" in line]
    assert progress and all(line.startswith(f"{path}: ") for line in progress), out.stderr
    assert "frames run in" not in out.stdout
    assert (
        "frames by kind: GTP-U: 40000; IP but not GTP-U: 0; plain IP (N6 side): 0; " in out.stdout
    )
    assert "not IP: 20000;" in out.stdout
