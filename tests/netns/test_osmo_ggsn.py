"""Interoperability with an independent GTP implementation: Osmocom's
sgsnemu (an SGSN with PDP contexts) and osmo-ggsn exchange real GTPv1-C and
GTP-U in namespaces; Sauron sits on the GGSN's Gn link, tshark captures the
same link, and the per-TEID G-PDU counts in each direction must agree.
(2G/3G GTP: no PFCP and no PDU Session Container, but sequence numbers.)"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import REPO

from sauron.abi import layout
from sauron.agent.config import InterfaceConfig
from sauron.agent.interfaces import attach_interfaces
from sauron.bpf.links import Links
from sauron.bpf.loader import DataPlane
from sauron.bpf.maps import read_counters
from sauron.host.netns import Topology

pytestmark = [pytest.mark.kernel, pytest.mark.netns, pytest.mark.tshark]

SGSN, GGSN = "192.0.2.1", "192.0.2.2"
CONTEXTS = 3


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _tshark_gpdus(pcap: Path) -> Counter[tuple[int, int]]:
    """(TEID, direction) -> G-PDU frames, as tshark decodes the capture."""
    out = subprocess.run(
        [
            "tshark",
            "-n",
            "-r",
            str(pcap),
            "-Y",
            "gtp.message == 255 && udp.port == 2152",
            "-T",
            "fields",
            "-E",
            "occurrence=f",  # the outer header's, not the tunnelled packet's
            "-e",
            "ip.dst",
            "-e",
            "gtp.teid",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    counts: Counter[tuple[int, int]] = Counter()
    for line in out.splitlines():
        dst, teid = line.split("\t")
        counts[(int(teid, 0), layout.DIR_UPLINK if dst == GGSN else layout.DIR_DOWNLINK)] += 1
    return counts


def test_sgsnemu_and_osmo_ggsn_per_teid_counts_match_tshark(
    dataplane: DataPlane, topology: Topology, links: Links, tmp_path: Path
) -> None:
    sgsn_ns, ggsn_ns = topology.namespace("sgsn"), topology.namespace("ggsn")
    for ns in (sgsn_ns, ggsn_ns):
        subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                "net.ipv4.conf.all.rp_filter=0",
                "net.ipv4.conf.default.rp_filter=0",
            ],
            check=True,
        )
    topology.veth(sgsn_ns, "gn", f"{SGSN}/24", ggsn_ns, "gn", f"{GGSN}/24")
    attach_interfaces(dataplane, [InterfaceConfig(name="gn", role="n3", netns=ggsn_ns)], links)

    config = (REPO / "tests" / "data" / "osmo-ggsn.cfg").read_text()
    config = config.replace("STATE_DIR", str(tmp_path)).replace("GGSN_ADDRESS", GGSN)
    (tmp_path / "ggsn.cfg").write_text(config)
    pcap = tmp_path / "gn.pcap"
    with (
        (tmp_path / "ggsn.log").open("w") as ggsn_log,
        (tmp_path / "sgsn.log").open("w") as sgsn_log,
    ):
        ggsn = subprocess.Popen(
            ["ip", "netns", "exec", ggsn_ns, "osmo-ggsn", "-c", str(tmp_path / "ggsn.cfg")],
            stdout=ggsn_log,
            stderr=subprocess.STDOUT,
        )
        capture = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                ggsn_ns,
                "tshark",
                "-q",
                "-n",
                "-i",
                "gn",
                "-f",
                "udp",
                "-w",
                str(pcap),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        sgsn = None
        try:
            deadline = time.monotonic() + 15
            while not (pcap.exists() and pcap.stat().st_size > 0) and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1.0)  # osmo-ggsn up and tshark capturing
            sgsn = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    sgsn_ns,
                    "sgsnemu",
                    "-l",
                    SGSN,
                    "-r",
                    GGSN,
                    "--contexts",
                    str(CONTEXTS),
                    "--pinghost",
                    "172.16.222.254",
                    "--pingrate",
                    "20",
                    "--pingcount",
                    "40",
                    "--statedir",
                    str(tmp_path),
                    "--pidfile",
                    str(tmp_path / "sgsnemu.pid"),
                ],
                stdout=sgsn_log,
                stderr=subprocess.STDOUT,
                cwd=tmp_path,
            )
            # sgsnemu keeps running after its pings; give them time, then stop it
            time.sleep(4.0)
        finally:
            if sgsn is not None:
                _stop(sgsn)
            time.sleep(0.5)
            _stop(capture)
            _stop(ggsn)

    truth = _tshark_gpdus(pcap)
    counters = read_counters(dataplane)
    ours: Counter[tuple[int, int]] = Counter()
    for session in counters.teids:
        for direction in (layout.DIR_UPLINK, layout.DIR_DOWNLINK):
            if session.packets[direction]:
                ours[(counters.teid_of(session), direction)] = session.packets[direction]

    assert len({teid for teid, d in truth if d == layout.DIR_UPLINK}) == CONTEXTS, truth
    assert sum(n for (_, d), n in truth.items() if d == layout.DIR_DOWNLINK) > 0, (
        "the GGSN answered"
    )
    assert ours == truth
    uplink = sum(n for (_, d), n in truth.items() if d == layout.DIR_UPLINK)
    total_ul = sum(
        counters.slice(layout.POINT_N3_INGRESS, s, layout.DIR_UPLINK).msg[0]
        for s in range(layout.MAX_SLICES)
    )
    assert total_ul == uplink
