"""The async client and the CLI commands on top of it, against the service
on loopback over an engine that read the real programs."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from frames import gtpu, plain, ul_packet
from manual_clock import ManualClock
from scapy.layers.inet import IP, UDP
from scapy.packet import Raw
from served import serve_in_thread

from sauron.abi import layout
from sauron.agent.runtime import AgentRuntime, ProgramMaps
from sauron.bpf import libbpf
from sauron.bpf.loader import DataPlane
from sauron.bpf.measurements import MeasureSettings, apply_settings
from sauron.catalog import Catalog
from sauron.commands.client import ApiError, SauronClient
from sauron.service.app import ServiceOptions, create_app

pytestmark = [pytest.mark.kernel]

REPO = Path(__file__).resolve().parents[2]
TOKEN = "client-test-token-0123"
EMBB, UL_TEID = 1, 0x10007
PACKETS = 12


class Agent:
    """The agent's runtime over the real programs, not started (the test
    ticks it), served on loopback with a token."""

    def __init__(self, dataplane: DataPlane, catalog: Catalog, url: str = "") -> None:
        self.dataplane = dataplane
        self.clock = ManualClock(4_000_000.0)
        self.runtime = AgentRuntime(
            catalog, ProgramMaps(dataplane, shortcut=False), clock=self.clock
        )
        self.engine = self.runtime.engine
        self.url = url

    def send(self, count: int, first_seq: int = 0) -> None:
        for n in range(count):
            packet = ul_packet(f"c{first_seq + n}".encode(), ip_id=first_seq + n)
            frame = gtpu(packet, UL_TEID, uplink=True, seq=first_seq + n)
            libbpf.test_run(self.dataplane.program_fd(layout.POINT_N3_INGRESS), frame)
            # routed out of N6 without NAT: N6 sees the UE address too
            libbpf.test_run(self.dataplane.program_fd(layout.POINT_N6_EGRESS), plain(packet))

    def tick(self) -> None:
        self.clock.t += 1
        self.engine.tick()


@pytest.fixture()
def agent(dataplane: DataPlane, catalog: Catalog) -> Iterator[Agent]:
    apply_settings(dataplane, MeasureSettings(transit_one_in=((EMBB, 1),)))
    a = Agent(dataplane, catalog)
    a.send(PACKETS)
    a.tick()
    app = create_app(a.runtime, options=ServiceOptions(token=TOKEN))
    with serve_in_thread(app) as url:
        a.url = url
        yield a


def test_client_covers_the_api(agent: Agent) -> None:
    async def body() -> None:
        async with SauronClient(agent.url, token=TOKEN) as api:
            assert (await api.health()).status == "ok" and await api.ready()
            slices = await api.slices()
            assert [s.name for s in slices.slices] == ["embb", "urllc", "mmtc"]
            embb = await api.slice("embb")
            assert embb.kpis is not None and embb.kpis.uplink.packets_in == PACKETS
            series = await api.kpis("embb", since=0)
            assert [p.uplink.packets_out for p in series.points] == [PACKETS]
            h = await api.histogram("embb", "transit", "uplink")
            assert h.count == PACKETS and h.unit == "ms"
            top = await api.sessions("embb", by="teid", limit=1)
            assert top.sessions[0].teid == f"0x{UL_TEID:08x}"
            assert (await api.sla()).status["embb"] in ("violated", "at risk", "met")
            assert 'sauron_packets_total{slice="embb"' in await api.metrics()
            assert "/api/v1/sla" in (await api.openapi())["paths"]
            # the checks off, as the suite's data path has them
            security = await api.slice_security("embb")
            assert not security.enabled and security.frames is None and security.intervals == 1

            with pytest.raises(ApiError) as bad:
                await api.histogram("embb", "transit", "sideways")
            assert (bad.value.status, bad.value.param) == (400, "direction")
            with pytest.raises(ApiError) as missing:
                await api.slice("no/such slice")
            assert missing.value.status == 404

        async with SauronClient(agent.url, token="wrong") as api:
            with pytest.raises(ApiError) as denied:
                await api.slices()
            assert denied.value.status == 401
        async with SauronClient("http://127.0.0.1:9", timeout_s=2) as api:
            with pytest.raises(ApiError) as unreachable:
                await api.slices()
            assert unreachable.value.status == 0

    asyncio.run(body())


def test_client_stream_yields_each_snapshot(agent: Agent) -> None:
    async def body() -> list[int]:
        got: list[int] = []
        async with SauronClient(agent.url, token=TOKEN) as api:
            stream = api.stream()
            first = asyncio.ensure_future(anext(stream))
            await asyncio.sleep(0.3)  # subscribed before the engine ticks
            for round_ in range(3):
                agent.send(round_ + 1, first_seq=100 * (round_ + 1))
                agent.tick()
                snap = await asyncio.wait_for(first if round_ == 0 else anext(stream), 10)
                got.append(snap.slices["embb"].uplink.packets_in)
            await stream.aclose()
        return got

    assert asyncio.run(body()) == [1, 2, 3]


def sauron(*args: str, url: str, token_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sauron", *args, "--url", url, "--token-file", str(token_file)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def ul_pps(table: str) -> list[float]:
    """The eMBB rows' UL pkt/s column (columns are fixed-width)."""
    lines = table.splitlines()
    head = next(line for line in lines if line.startswith("slice"))
    end = head.index("UL pkt/s") + len("UL pkt/s")
    return [float(line[end - 10 : end]) for line in lines if line.startswith("embb")]


def test_cli_commands(agent: Agent, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    # the operators' copy, shared with their group: the agent's rule that
    # its token file be its own is not the client's
    token_file.chmod(0o640)

    slices = sauron("slices", url=agent.url, token_file=token_file)
    assert slices.returncode == 0, slices.stderr
    rows = slices.stdout.splitlines()
    assert rows[0].split()[:3] == ["slice", "id", "S-NSSAI"]
    assert rows[1].split()[:3] == ["embb", "1", "1-000001"]

    kpis = sauron("kpis", "embb", url=agent.url, token_file=token_file)
    assert kpis.returncode == 0, kpis.stderr
    assert ul_pps(kpis.stdout) == [PACKETS]  # over the one-second interval

    as_json = sauron("kpis", "--json", url=agent.url, token_file=token_file)
    doc = json.loads(as_json.stdout)
    assert doc["embb"]["uplink"]["packets_in"] == PACKETS and doc["urllc"]["uplink"]["pps"] == 0

    sla = sauron("sla", url=agent.url, token_file=token_file)
    assert sla.returncode == 0 and "embb" in sla.stdout and "closes after 3" in sla.stdout

    sessions = sauron("sessions", url=agent.url, token_file=token_file)
    assert sessions.returncode == 0, sessions.stderr
    assert (
        sessions.stdout.strip() == "no sessions: the agent has no control_plane source configured"
    )

    unknown = sauron("kpis", "nope", url=agent.url, token_file=token_file)
    assert unknown.returncode == 1 and "404" in unknown.stderr and "nope" in unknown.stderr
    no_token = subprocess.run(
        [sys.executable, "-m", "sauron", "slices", "--url", agent.url],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert no_token.returncode == 1 and "401" in no_token.stderr


def test_cli_sla_says_why_a_violation_closed(agent: Agent, tmp_path: Path) -> None:
    """eMBB loses GTP-U sequence numbers for three intervals, then sends
    nothing for a window (5 intervals): its loss violation closes as not
    measured, and `sauron sla` says so."""
    for interval in range(3):
        for seq in (20 + 10 * interval, 25 + 10 * interval):  # the ones between are lost
            agent.send(1, first_seq=seq)
        agent.tick()
    for _ in range(5):
        agent.tick()
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    sla = sauron("sla", url=agent.url, token_file=token_file)
    assert sla.returncode == 0, sla.stderr
    assert "or after 5 intervals without a check (not measured)" in sla.stdout
    doc = asyncio.run(_sla(agent.url))
    closed = next(v for v in doc.events if v.target == "max_loss_ratio.sequence.uplink")
    assert closed.ended_at is not None
    (row,) = [x for x in sla.stdout.splitlines() if "max_loss_ratio.sequence.uplink" in x]
    # limit and worst in their unit, the times as clock times, as the dashboard shows them
    began, ended = (
        time.strftime("%H:%M:%S", time.localtime(t)) for t in (closed.started_at, closed.ended_at)
    )
    worst = f"{closed.worst * 100:.4g}"
    assert row.split() == [
        "embb",
        "max_loss_ratio.sequence.uplink",
        "1",
        "%",
        worst,
        "%",
        began,
        ended,
        "closed",
        "(not",
        "measured),",
        str(closed.intervals),
        "intervals",
    ]
    (still,) = [x for x in sla.stdout.splitlines() if "min_throughput_mbps.downlink" in x]
    assert " 1 Mbit/s " in still and re.search(r"  -  +open, \d+ intervals$", still)


async def _sla(url: str) -> Any:
    async with SauronClient(url, token=TOKEN) as api:
        return await api.sla()


#: a UE address and TEID no catalog slice claims: slice 0, unclassified
STRAY_UE, STRAY_TEID = "10.99.0.7", 0x00990007


def test_client_and_cli_ask_for_unclassified(agent: Agent, tmp_path: Path) -> None:
    for n in range(3):
        packet = IP(src=STRAY_UE, dst="198.51.100.9", id=n) / UDP(sport=40000, dport=5000)
        packet /= Raw(b"stray")
        frame = gtpu(packet, STRAY_TEID, uplink=True, seq=n)
        libbpf.test_run(agent.dataplane.program_fd(layout.POINT_N3_INGRESS), frame)
        libbpf.test_run(agent.dataplane.program_fd(layout.POINT_N6_EGRESS), plain(packet))
    agent.tick()

    async def body() -> None:
        async with SauronClient(agent.url, token=TOKEN) as api:
            stray = await api.slice("unclassified")
            assert (stray.id, stray.snssai, stray.status) == (0, None, "unmeasured")
            assert stray.kpis is not None and stray.kpis.uplink.packets_in == 3
            series = await api.kpis("unclassified")
            assert [p.uplink.packets_in for p in series.points] == [0, 3]
            top = await api.sessions("unclassified")
            assert [s.teid for s in top.sessions] == [f"0x{STRAY_TEID:08x}"]
            assert (await api.histogram("unclassified", "ran_rtt")).count == 0

    asyncio.run(body())

    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    kpis = sauron("kpis", "unclassified", url=agent.url, token_file=token_file)
    assert kpis.returncode == 0, kpis.stderr
    head, row = kpis.stdout.splitlines()
    end = head.index("UL pkt/s") + len("UL pkt/s")
    assert row.split()[:2] == ["unclassified", "unmeasured"]
    assert float(row[end - 10 : end]) == 3


def test_top_shows_each_interval(agent: Agent, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    stop = threading.Event()

    def ticker() -> None:
        while not stop.wait(0.3):
            agent.send(2, first_seq=int(agent.clock.t) % 60000)
            agent.tick()

    thread = threading.Thread(target=ticker, daemon=True)
    thread.start()
    try:
        # piped: frames follow each other, the screen is never cleared
        top = sauron("top", "--count", "2", url=agent.url, token_file=token_file)
        as_json = sauron("top", "--count", "2", "--json", url=agent.url, token_file=token_file)
    finally:
        stop.set()
        thread.join()
    assert top.returncode == 0, top.stderr
    assert "\x1b[" not in top.stdout
    frames = top.stdout.count("sauron top - ")
    assert frames == 2
    assert ul_pps(top.stdout) == [2, 2]
    # rows keep the catalog's order, whatever moves
    names = [line.split()[0] for line in top.stdout.splitlines() if line[:1].isalpha()]
    order = [n for n in names if n not in ("sauron", "slice")]
    assert order[: len(order) // 2] == order[len(order) // 2 :]
    assert as_json.returncode == 0, as_json.stderr
    docs = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert len(docs) == 2 and all(d["slices"]["embb"]["uplink"]["pps"] == 2 for d in docs)
