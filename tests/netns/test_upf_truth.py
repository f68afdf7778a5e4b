"""The agent's figures on a UPF that behaves like a real one, against the
testbed's ground truth: `sauron run` on the testbed, whose UPF holds URLLC
700 ms (longer than the agent's 0.5 s interval, so packets cross interval
ends inside it), loses a tenth of eMBB's packets each way, and sends eMBB's
downlink without a PDU Session Container (as Open5GS does without a QER).

- drops: URLLC none although every packet was still inside at some
  interval's end; eMBB exactly what the UPF lost, each direction;
- QFI: the downlink TEID shows null, never the kernel's internal 255;
- SLA: URLLC's latency violation, open while it sends, closes "not
  measured" once it has been silent for the rule's window;
- unclassified: G-PDUs of a TEID no session has reach its KPI routes."""

from __future__ import annotations

import asyncio
import signal
import socket
import struct
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from agent_process import REPO, agent_config, start_agent

from sauron.catalog import load_catalog
from sauron.commands.client import SauronClient
from sauron.host.netns import inside
from sauron.testbed.bed import N3_UPF, Testbed
from sauron.testbed.paced import send_paced
from sauron.testbed.sessions import Impairment, SessionsFile, make_sessions

pytestmark = [pytest.mark.kernel, pytest.mark.netns]

INTERVAL_S = 0.5
URLLC_DELAY_MS = 700.0
EMBB_LOSS = 0.1
PPS = 60
TRAFFIC_S = 4.0
SLA_WINDOW = 4
#: settle time of a drop (the transit expiry), and a margin of intervals
SETTLE_S = 2.0 + 3 * INTERVAL_S
STRAY_TEID = 0x7EEDBEEF
STRAY_GPDUS = 25
#: per-UE routes (top sessions) need the operator's token
TOKEN = "upf-truth-test-token-0123"


def stray_gpdu(teid: int) -> bytes:
    """A G-PDU (no optional fields) carrying a small IPv4/UDP packet."""
    inner = bytes.fromhex("450000200000000040110000") + bytes([10, 60, 0, 9, 198, 51, 100, 7])
    inner += struct.pack("!HHHH", 4000, 9, 12, 0) + b"stry"
    return struct.pack("!BBHI", 0x30, 0xFF, len(inner), teid) + inner


def send_strays(ns: str) -> None:
    with inside(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        for _ in range(STRAY_GPDUS):
            sock.sendto(stray_gpdu(STRAY_TEID), (N3_UPF, 2152))


def totals(points: list[Any], direction: str, field: str) -> int:
    return sum(getattr(getattr(p, direction), field) for p in points)


def test_drops_qfi_violations_and_unclassified_hold_to_the_truth(tmp_path: Path) -> None:
    doc = yaml.safe_load((REPO / "slices" / "default.yaml").read_text())
    for s in doc["slices"]:
        s["sla"] = {"transit_latency_ms": {"p99": 50}} if s["name"] == "urllc" else {}
    catalog_path = tmp_path / "catalog.yaml"
    catalog_path.write_text(yaml.safe_dump(doc))
    catalog = load_catalog(catalog_path)
    sessions = [
        s.model_copy(update={"downlink_container": s.slice != "embb"})
        for s in make_sessions(catalog, {"embb": 1, "urllc": 1})
    ]
    sessions_file = SessionsFile(
        sessions=sessions,
        impairments={
            "urllc": Impairment(delay_ms=URLLC_DELAY_MS),
            "embb": Impairment(loss=EMBB_LOSS),
        },
    )
    ue = {s.slice: str(s.ue_ip) for s in sessions}
    teids = {s.slice: (s.ul_teid, s.dl_teid) for s in sessions}

    with Testbed(catalog, sessions_file, tmp_path / "bed", echo_interval=60.0) as bed:
        token_file = tmp_path / "token"
        token_file.write_text(TOKEN + "\n")
        token_file.chmod(0o600)
        config = agent_config(
            tmp_path / "agent.yaml",
            bed.upf,
            catalog=str(catalog_path),
            interval_s=INTERVAL_S,
            service={"host": "127.0.0.1", "port": 0, "token_file": str(token_file)},
            sla={"window": SLA_WINDOW, "open_bad": 2, "close_good": 2},
        )
        agent, url = start_agent(config)
        try:

            async def observe() -> dict[str, Any]:
                async with SauronClient(url, token=TOKEN) as api:
                    stop, sent = threading.Event(), {}
                    plan = {ue["embb"]: PPS, ue["urllc"]: PPS}
                    sender = threading.Thread(target=send_paced, args=(bed, plan, stop, sent))
                    sender.start()
                    await asyncio.sleep(TRAFFIC_S / 2)
                    await asyncio.to_thread(send_strays, bed.gnb)
                    top = await api.sessions("embb", by="teid")
                    urllc_top = await api.sessions("urllc", by="teid")
                    during = await api.sla()
                    await asyncio.sleep(TRAFFIC_S / 2)
                    stop.set()
                    sender.join()
                    # every fate settles, then the silent slice's window passes
                    await asyncio.sleep(URLLC_DELAY_MS / 1000 + SETTLE_S)
                    await asyncio.sleep(SLA_WINDOW * INTERVAL_S + 2 * INTERVAL_S)
                    return {
                        "top": top,
                        "urllc_top": urllc_top,
                        "during": during,
                        "after": await api.sla(),
                        "urllc": (await api.kpis("urllc")).points,
                        "embb": (await api.kpis("embb")).points,
                        "unclassified": (await api.kpis("unclassified")).points,
                        "unclassified_doc": await api.slice("unclassified"),
                        "sent": sent,
                    }

            seen = asyncio.run(observe())
        finally:
            agent.send_signal(signal.SIGTERM)
            out, _ = agent.communicate(timeout=20)
        assert agent.returncode == 0, out
        truth = bed.stop()
    upf = truth["upf"]["slices"]

    # URLLC: held 700 ms, so packets were inside at interval ends, and none lost
    urllc = seen["urllc"]
    assert max(k.uplink.upf_in_flight for k in urllc) > 0
    assert max(k.downlink.upf_in_flight for k in urllc) > 0
    for direction in ("uplink", "downlink"):
        assert totals(urllc, direction, "upf_drops") == 0, direction
        assert totals(urllc, direction, "packets_in") == totals(urllc, direction, "packets_out")
        assert getattr(urllc[-1], direction).upf_in_flight == 0
    assert totals(urllc, "uplink", "packets_in") == upf["urllc"]["ul_received"]

    # eMBB: exactly what the UPF lost, each direction
    embb = seen["embb"]
    for direction, name in (("uplink", "ul"), ("downlink", "dl")):
        lost = upf["embb"].get(f"{name}_lost", 0)
        assert lost > 0, upf["embb"]
        assert totals(embb, direction, "upf_drops") == lost, (direction, upf["embb"])

    # QFI: the uplink TEID's container says 9; the downlink TEID's G-PDUs carry none
    by_teid = {int(v.teid, 16): v for v in seen["top"].sessions if v.teid is not None}
    ul_teid, dl_teid = teids["embb"]
    assert by_teid[ul_teid].qfi == 9
    assert by_teid[dl_teid].qfi is None
    urllc_qfis = {v.qfi for v in seen["urllc_top"].sessions}
    assert urllc_qfis == {9} and 255 not in urllc_qfis

    # SLA: open while URLLC sends late, closed as not measured once silent
    opened = [v for v in seen["during"].events if v.slice == "urllc"]
    assert opened and all(v.open for v in opened), seen["during"]
    closed = [v for v in seen["after"].events if v.slice == "urllc"]
    assert closed and all(not v.open and v.end_reason == "not measured" for v in closed)
    last_measured = max(p.time for p in urllc if p.uplink.transit.samples)
    for v in closed:
        assert v.ended_at is not None and v.ended_at > last_measured

    # unclassified: the stray TEID's G-PDUs, through its own KPI routes
    stray = totals(seen["unclassified"], "uplink", "packets_in")
    assert stray >= STRAY_GPDUS
    assert truth["upf"]["other"]["ul_unknown_teid"] == STRAY_GPDUS
    doc_ = seen["unclassified_doc"]
    assert doc_.name == "unclassified" and doc_.snssai is None and doc_.id == 0
