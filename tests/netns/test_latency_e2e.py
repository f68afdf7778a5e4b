"""Latency and loss end to end in the netns testbed: the reference UPF holds
each slice's packets for a known time and drops a known share; Sauron,
attached to the UPF's N3 and N6, must report transit percentiles within the
bucket error of that delay plus the baseline it measured before, transit
loss within 0.2 percentage points of what the UPF dropped (zero where it
dropped nothing), radio-side loss from GTP-U sequence numbers exactly, the
RAN/DN round-trip split, and GTP-U echo round trips per peer."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest

from sauron.abi import layout
from sauron.agent.interfaces import attach_interfaces
from sauron.bpf.loader import DataPlane
from sauron.bpf.maps import DataPlaneCounters, read_counters
from sauron.bpf.measurements import MeasureSettings, TransitExpiry, apply_settings
from sauron.catalog import Catalog
from sauron.kpi.quality import LatencyKpis, latency_kpis, loss_kpis
from sauron.testbed.bed import N3_GNB, N6_DN, TCP_SINK_PORT, UDP_ECHO_PORT, Testbed
from sauron.testbed.sessions import Impairment, SessionsFile, make_sessions

pytestmark = [pytest.mark.kernel, pytest.mark.netns]

UL, DL = layout.DIR_UPLINK, layout.DIR_DOWNLINK
DELAY_MS = {"urllc": 2.0, "embb": 20.0}
MMTC_LOSS = 0.01
URLLC_RADIO_LOSS = 0.02
RADIO_DELAY_MS = 5.0  # eMBB, each way
# what asyncio timers and the kernel add around the UPF's own hold measurement
SCHEDULING_SLACK_MS = 0.3


def udp_traffic(bed: Testbed, ues: list[str], seconds: float, rate: float) -> None:
    """Every UE sends `rate` datagrams a second to the DN's echo service,
    which sends each back: both directions cross the UPF. Payloads differ
    per UE and datagram, as real ones do: the echo server's replies carry IP
    id 0 (DF, unconnected socket), and the fingerprint leaves the UE's
    address out (NAT rewrites it)."""
    socks = [bed.ue_udp_socket(ue) for ue in ues]
    stop = time.monotonic() + seconds
    n = 0
    while time.monotonic() < stop:
        for i, sock in enumerate(socks):
            payload = i.to_bytes(4, "big") + n.to_bytes(4, "big") + bytes(56)
            sock.sendto(payload, (N6_DN, UDP_ECHO_PORT))
        n += 1
        time.sleep(1 / rate)
    time.sleep(0.2)
    for sock in socks:
        sock.close()


def tcp_connections(bed: Testbed, ue: str, count: int) -> None:
    """Short connections: each handshake is one RAN-side round trip (SYN-ACK
    out on N3, ACK back) and one DN-side (SYN out on N6, SYN-ACK back)."""
    for _ in range(count):
        sock = bed.ue_tcp_connection(ue, TCP_SINK_PORT)
        sock.sendall(b"hello")
        sock.shutdown(socket.SHUT_WR)
        sock.recv(64)
        sock.close()


def transit(now: DataPlaneCounters, before: DataPlaneCounters, sid: int, d: int) -> LatencyKpis:
    return latency_kpis(now, before, layout.LAT_TRANSIT, sid, d)


def test_transit_latency_loss_and_rtt_against_injected_truth(
    dataplane: DataPlane, catalog: Catalog, tmp_path: Path
) -> None:
    sessions = SessionsFile(
        sessions=make_sessions(catalog, {"embb": 2, "urllc": 2, "mmtc": 4}, seq_slices=("urllc",)),
        uplink_radio_loss={"urllc": URLLC_RADIO_LOSS},
        radio_delay_ms={"embb": RADIO_DELAY_MS},
    )
    ids = {s.name: s.id for s in catalog.slices}
    ues = [str(s.ue_ip) for s in sessions.sessions]
    # every packet stamped (the catalog samples eMBB one in 16)
    apply_settings(
        dataplane, MeasureSettings(transit_one_in=tuple((s.id, 1) for s in catalog.slices))
    )
    expiry = TransitExpiry(dataplane, timeout_s=0.5)

    def attach(bed: Testbed) -> None:
        attach_interfaces(dataplane, bed.interfaces(), bed.links)

    with Testbed(
        catalog, sessions, tmp_path / "bed", echo_interval=0.2, before_nodes=attach
    ) as bed:
        # phase 1: no impairment inside the UPF; the baseline transit
        start = read_counters(dataplane, expiry)
        udp_traffic(bed, ues, seconds=2.0, rate=100)
        baseline = read_counters(dataplane, expiry)
        # phase 2: known delay per slice, known loss on mMTC
        bed.set_impairments(
            {
                "urllc": Impairment(delay_ms=DELAY_MS["urllc"]),
                "embb": Impairment(delay_ms=DELAY_MS["embb"]),
                "mmtc": Impairment(loss=MMTC_LOSS),
            }
        )
        time.sleep(0.3)
        before = read_counters(dataplane, expiry)
        udp_traffic(bed, ues, seconds=5.0, rate=100)
        time.sleep(0.8)  # beyond the stamp timeout: every fate is known
        after = read_counters(dataplane, expiry)
        # phase 3: TCP from an eMBB UE, whose radio leg adds 5 ms each way
        tcp_connections(bed, ues[0], count=20)
        time.sleep(0.2)
        tcp_done = read_counters(dataplane, expiry)
        truth = bed.stop()

    upf: dict[str, Any] = truth["upf"]
    holds = upf["holds"]
    report = []
    for name, delay in DELAY_MS.items():
        sid = ids[name]
        for d, dname in ((UL, "ul"), (DL, "dl")):
            base = transit(baseline, start, sid, d)
            got = transit(after, before, sid, d)
            hold = holds[f"{name}/{dname}"]["p50_ms"]
            assert base.p50_ms is not None and got.p50_ms is not None
            # the UPF held the packets as asked (its own clock)
            assert delay <= hold <= delay + 1.5, (name, dname, hold)
            # uplink holds start at the kernel's receive time, so they hold
            # the wait in the UPF's socket too: they are the transit itself.
            # Downlink holds start when the UPF read the TUN device: the
            # undelayed transit less the undelayed hold is what comes before
            before_hold = upf["holds_before"][f"{name}/{dname}"]["p50_ms"]
            expected = hold if dname == "ul" else base.p50_ms - before_hold + hold
            tolerance = got.error_ms["p50"] + SCHEDULING_SLACK_MS
            report.append((name, dname, base.p50_ms, hold, got.p50_ms, got.samples))
            assert abs(got.p50_ms - expected) <= tolerance, report
            assert got.samples >= 400

    # loss inside the UPF over the whole run (the UPF counts it so): what the
    # UPF dropped, per direction
    mmtc = ids["mmtc"]
    slices = upf["slices"]
    for d, dname in ((UL, "ul"), (DL, "dl")):
        loss = loss_kpis(after, start, mmtc, d)
        dropped = slices["mmtc"].get(f"{dname}_lost", 0)
        received = slices["mmtc"][f"{dname}_received"]
        truth_ratio = dropped / received
        assert dropped > 0
        assert loss.transit_ratio is not None
        assert abs(loss.transit_ratio - truth_ratio) <= 0.002, (dname, loss, dropped, received)
        assert loss.transit_lost == dropped
        stamps = after.measure[(mmtc, d)]
        assert stamps.transit_duplicate == 0 and stamps.transit_table_full == 0
        for other in ("urllc", "embb"):
            clean = loss_kpis(after, start, ids[other], d)
            assert clean.transit_lost == 0 and clean.transit_resolved > 0

    # radio-side loss, from the gNB's GTP-U sequence numbers, whole run
    radio_lost = truth["gnb"]["slices"]["urllc"]["ul_radio_lost"]
    seq = loss_kpis(after, start, ids["urllc"], UL)
    assert radio_lost > 0
    # a gap shows only when a later packet arrives: a tunnel's last packet,
    # if lost, is never seen missing (one per URLLC tunnel at most)
    urllc_tunnels = sum(1 for s in sessions.sessions if s.slice == "urllc")
    assert radio_lost - urllc_tunnels <= seq.sequence_lost <= radio_lost
    assert seq.sequence_received == truth["gnb"]["slices"]["urllc"]["ul_sent"]

    # round trips split at the UPF: the radio leg holds eMBB 5 ms each way
    ran = latency_kpis(tcp_done, after, layout.LAT_RAN_RTT, ids["embb"], DL)
    dn = latency_kpis(tcp_done, after, layout.LAT_DN_RTT, ids["embb"], UL)
    assert ran.samples >= 20 and dn.samples >= 20
    assert ran.p50_ms is not None and dn.p50_ms is not None
    assert 2 * RADIO_DELAY_MS <= ran.p50_ms <= 2 * RADIO_DELAY_MS + 3.0 + ran.error_ms["p50"]
    assert dn.p50_ms < 2.0

    # GTP-U echo both ways between the UPF and the gNB
    peers = {key: h.count for key, h in after.peers.items()}
    assert peers.get((N3_GNB, layout.ECHO_LOCAL), 0) >= 5
    assert peers.get((N3_GNB, layout.ECHO_PEER), 0) >= 5
