"""`sauron run --config`: the agent as deployed, a process of its own attached
to the testbed UPF's N3 and N6 through its configuration file. The REST
numbers must equal what the gNB sent; a latency target crossed by delay
injected in the UPF must open a violation, and lifting the delay must close
it; SIGTERM must leave no program on any link."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from pathlib import Path

import pytest
import yaml
from agent_process import REPO, links_with_programs, start_agent

from sauron.abi.histogram import LATENCY
from sauron.catalog import load_catalog
from sauron.commands.client import SauronClient
from sauron.testbed.bed import N6_DN, UDP_ECHO_PORT, Testbed
from sauron.testbed.sessions import Impairment, SessionsFile, make_sessions

pytestmark = [pytest.mark.kernel, pytest.mark.netns]

TARGET_P99_MS = 30.0
DELAY_MS = 60.0
INTERVAL_S = 0.5


def catalog_with_one_target(path: Path) -> Path:
    """The default catalog's slices; only URLLC keeps a target (a transit
    p99 far above this machine's baseline), so nothing else can open."""
    doc = yaml.safe_load((REPO / "slices" / "default.yaml").read_text())
    for s in doc["slices"]:
        s["sla"] = {"transit_latency_ms": {"p99": TARGET_P99_MS}} if s["name"] == "urllc" else {}
    path.write_text(yaml.safe_dump(doc))
    return path


def send_udp(bed: Testbed, ues: list[str], stop: threading.Event, rate: float = 50) -> None:
    socks = [bed.ue_udp_socket(ue) for ue in ues]
    n = 0
    while not stop.is_set():
        for i, sock in enumerate(socks):
            sock.sendto(
                i.to_bytes(4, "big") + n.to_bytes(4, "big") + bytes(40), (N6_DN, UDP_ECHO_PORT)
            )
        n += 1
        time.sleep(1 / rate)
    for sock in socks:
        sock.close()


def test_run_serves_numbers_opens_and_closes_a_violation_and_detaches(tmp_path: Path) -> None:
    catalog_path = catalog_with_one_target(tmp_path / "catalog.yaml")
    catalog = load_catalog(catalog_path)
    sessions = SessionsFile(sessions=make_sessions(catalog, {"urllc": 2, "embb": 1}))
    urllc_ues = [str(s.ue_ip) for s in sessions.sessions if s.slice == "urllc"]

    with Testbed(catalog, sessions, tmp_path / "bed", echo_interval=5.0) as bed:
        config = tmp_path / "agent.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "node": "upf-test",
                    "catalog": str(catalog_path),
                    "interval_s": INTERVAL_S,
                    "interfaces": [
                        {"name": "n3", "role": "n3", "netns": bed.upf},
                        {"name": "n6", "role": "n6", "netns": bed.upf},
                    ],
                    "service": {"host": "127.0.0.1", "port": 0},
                    "sla": {"window": 3, "open_bad": 2, "close_good": 2},
                }
            )
        )
        agent, url = start_agent(config)
        try:
            stop = threading.Event()
            sender = threading.Thread(target=send_udp, args=(bed, urllc_ues, stop), daemon=True)
            sender.start()

            async def observe() -> tuple[list[str], dict[str, object], int]:
                statuses = []
                async with SauronClient(url) as api:
                    await asyncio.sleep(2.0)  # undelayed
                    statuses.append((await api.sla()).status["urllc"])
                    bed.set_impairments({"urllc": Impairment(delay_ms=DELAY_MS)})
                    opened = None
                    for _ in range(40):
                        await asyncio.sleep(INTERVAL_S)
                        report = await api.sla()
                        opened = next((v for v in report.events if v.open), None)
                        if opened is not None:
                            break
                    assert opened is not None, "no violation opened under the delay"
                    statuses.append(report.status["urllc"])
                    bed.set_impairments({})
                    for _ in range(40):
                        await asyncio.sleep(INTERVAL_S)
                        report = await api.sla()
                        if not any(v.open for v in report.events):
                            break
                    statuses.append(report.status["urllc"])
                    stop.set()
                    sender.join()
                    await asyncio.sleep(3 * INTERVAL_S)  # the last packets into a snapshot
                    series = await api.kpis("urllc")
                    sent = sum(p.uplink.packets_in for p in series.points)
                    return statuses, report.events[0].model_dump(), sent

            statuses, event, counted = asyncio.run(observe())
        finally:
            agent.send_signal(signal.SIGTERM)
            out, _ = agent.communicate(timeout=20)
        assert agent.returncode == 0, out
        assert links_with_programs(bed.upf) == [], out
        truth = bed.stop()

    assert statuses[0] == "met" and statuses[1] == "violated", statuses
    assert event["target"] in ("transit_latency_ms.p99.uplink", "transit_latency_ms.p99.downlink")
    # every packet was held at least DELAY_MS: the p99, estimated within the
    # histogram bucket that holds the delay, is at least that bucket's floor
    floor_ms = LATENCY.lower(LATENCY.bucket(int(DELAY_MS * 1e6))) / 1e6
    assert event["limit"] == TARGET_P99_MS and event["worst"] >= floor_ms, event
    assert event["open"] is False and event["ended_at"] > event["started_at"]
    assert statuses[2] in ("met", "at risk")
    assert counted == truth["gnb"]["slices"]["urllc"]["ul_sent"]
