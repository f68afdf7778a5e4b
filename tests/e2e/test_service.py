"""The HTTP service over the agent's runtime, its engine fed by the real
programs: route shapes and values, problem details for bad input,
readiness, the background tick."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from fake_data_plane import FakeDataPlane
from frames import gtpu, gtpu_raw, inner_v4, natted, outer, plain, ul_packet
from manual_clock import ManualClock
from scapy.layers.inet import IP, UDP
from scapy.packet import Raw
from yarl import URL

from sauron.abi import layout
from sauron.abi.histogram import GAP
from sauron.abi.kpis import LATENCY_KPIS, SECURITY_KPIS, TRAFFIC_KPIS
from sauron.agent.runtime import AgentRuntime, ProgramMaps
from sauron.bpf import libbpf
from sauron.bpf.loader import DataPlane
from sauron.bpf.measurements import MeasureSettings, apply_settings
from sauron.catalog import Catalog
from sauron.service import schemas
from sauron.service.app import ServiceOptions, create_app
from sauron.service.events import parse_events
from sauron.service.openapi import document as openapi_document
from sauron.service.stream import QUEUE_PER_CLIENT, StreamClient, StreamHub

pytestmark = [pytest.mark.kernel]

# a G-PDU whose extension header has length 0 (test_parser builds the same)
MALFORMED_FRAME = (lambda f: f[:54] + b"\x00" + f[55:])(
    outer(gtpu_raw(0x10001, extensions=[(0x85, b"\x10\x09")], payload=inner_v4()))
)


TOKEN = "service-test-token-0123"


def with_client(
    agent: AgentRuntime,
    body: Callable[[TestClient], Awaitable[Any]],
    started: bool = False,
    options: ServiceOptions | None = None,
) -> Any:
    """The service over the runtime and a client of it; the runtime runs
    while the client asks when `started`, else the test drives its engine.
    With no options, the service has a token and the client sends it (the
    per-session routes need one)."""
    headers = None
    if options is None:
        options, headers = ServiceOptions(token=TOKEN), {"Authorization": f"Bearer {TOKEN}"}

    async def run() -> Any:
        app = create_app(agent, options=options)
        async with contextlib.AsyncExitStack() as running:
            if started:
                await running.enter_async_context(agent)
            client = await running.enter_async_context(TestClient(TestServer(app), headers=headers))
            return await body(client)

    return asyncio.run(run())


@pytest.fixture()
def runtime(dataplane: DataPlane, catalog: Catalog) -> tuple[AgentRuntime, ManualClock]:
    """An agent's runtime over the real programs' maps, not started: the
    tests tick its engine by hand."""
    clock = ManualClock(2_000_000.0)
    return AgentRuntime(catalog, ProgramMaps(dataplane, shortcut=False), clock=clock), clock


def test_slices_kpis_and_sla(
    dataplane: DataPlane, runtime: tuple[AgentRuntime, ManualClock]
) -> None:
    agent, clock = runtime
    frame = outer(gtpu_raw(0x10001, payload=inner_v4(src="10.45.0.9")))
    for second in range(3):
        for _ in range(10 * (second + 1)):
            libbpf.test_run(dataplane.program_fd(layout.POINT_N3_INGRESS), frame)
        clock.t += 1
        agent.engine.tick()

    async def body(client: TestClient) -> None:
        r = await client.get("/api/v1/slices")
        assert r.status == 200
        doc = await r.json()
        schemas.SliceList.model_validate(doc)
        slices = doc["slices"]
        assert [s["name"] for s in slices] == ["embb", "urllc", "mmtc"]
        embb = slices[0]
        assert embb["snssai"] == {"sst": 1, "sd": "000001"} and embb["id"] == 1
        assert embb["kpis"]["uplink"]["packets_in"] == 30 and embb["kpis"]["active_teids"] == 1
        assert embb["sla_targets"]["min_throughput_mbps"] == {"downlink": 1.0}

        one = await (await client.get("/api/v1/slices/urllc")).json()
        assert one["name"] == "urllc" and one["kpis"]["uplink"]["packets_in"] == 0

        series = await (await client.get("/api/v1/slices/embb/kpis")).json()
        schemas.KpiSeries.model_validate(series)
        assert [p["uplink"]["packets_in"] for p in series["points"]] == [10, 20, 30]
        since = clock.t - 1.5
        part = await (await client.get(f"/api/v1/slices/embb/kpis?since={since}")).json()
        assert [p["uplink"]["packets_in"] for p in part["points"]] == [20, 30]
        stepped = await (await client.get("/api/v1/slices/embb/kpis?step=2")).json()
        assert [p["uplink"]["packets_in"] for p in stepped["points"]] == [10, 30]

        s = await (await client.get("/api/v1/sla")).json()
        schemas.SlaReport.model_validate(s)
        # eMBB asks for 1 Mbit/s downlink and got nothing for three intervals
        assert s["status"]["embb"] == "violated"
        assert s["events"][0]["target"] == "min_throughput_mbps.downlink" and s["events"][0]["open"]

    with_client(agent, body)


def test_a_slice_that_stops_sending_closes_its_violation_as_not_measured(
    dataplane: DataPlane, runtime: tuple[AgentRuntime, ManualClock]
) -> None:
    """URLLC loses GTP-U sequence numbers for three intervals (a violation
    of its loss target), then carries nothing: after a window without a
    check (5 intervals) the violation closes, saying why."""
    agent, clock = runtime
    apply_settings(dataplane, MeasureSettings())
    for interval in range(3):
        for seq in range(interval * 10, interval * 10 + 10, 2):  # every other one lost
            packet = IP(src="10.46.0.7", dst="198.51.100.9", id=seq) / UDP(sport=4, dport=5)
            frame = gtpu(packet, 0x20007, uplink=True, seq=seq)
            libbpf.test_run(dataplane.program_fd(layout.POINT_N3_INGRESS), frame)
        clock.t += 1
        agent.engine.tick()
    target = "max_loss_ratio.sequence.uplink"
    (opened,) = [v for v in agent.engine.sla.events if v.slice_name == "urllc"]
    assert opened.target == target and opened.open
    for _ in range(5):
        clock.t += 1
        agent.engine.tick()

    async def body(client: TestClient) -> None:
        r = await client.get("/api/v1/sla")
        doc = await r.json()
        schemas.SlaReport.model_validate(doc)
        (closed,) = [v for v in doc["events"] if v["slice"] == "urllc"]
        assert (closed["target"], closed["open"], closed["end_reason"]) == (
            target,
            False,
            "not measured",
        )
        assert closed["ended_interval"] == 8 and closed["ended_at"] == clock.t
        assert (closed["started_interval"], closed["intervals"], closed["bad_intervals"]) == (
            1,
            7,
            3,
        )
        assert doc["status"]["urllc"] == "unmeasured"
        # eMBB's downlink minimum is checked every interval: still open
        (embb,) = [v for v in doc["events"] if v["slice"] == "embb"]
        assert embb["open"] and embb["end_reason"] is None

    with_client(agent, body)


@pytest.mark.parametrize(
    ("path", "status", "param"),
    [
        ("/api/v1/slices/nope", 404, None),
        ("/api/v1/slices/nope/kpis", 404, None),
        ("/api/v1/slices/embb/kpis?since=yesterday", 400, "since"),
        ("/api/v1/slices/embb/kpis?step=-1", 400, "step"),
        ("/api/v1/slices/embb/kpis?since=10&until=5", 400, "until"),
        ("/api/v1/slices/embb/kpis?until=nan", 400, "until"),
        ("/api/v1/nothing", 404, None),
    ],
)
def test_bad_requests_get_problem_details(
    runtime: tuple[AgentRuntime, ManualClock], path: str, status: int, param: str | None
) -> None:
    async def body(client: TestClient) -> None:
        r = await client.get(path)
        assert r.status == status
        assert r.content_type == "application/problem+json"
        doc = await r.json()
        assert doc["status"] == status and doc["detail"]
        assert doc.get("param") == param
        assert "Traceback" not in await r.text()

    with_client(runtime[0], body)


def test_readiness_follows_the_background_tick(catalog: Catalog) -> None:
    agent = AgentRuntime(catalog, FakeDataPlane(catalog), interval_s=0.05)

    async def body(client: TestClient) -> None:
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/readyz")).status == 503
        for _ in range(100):
            await asyncio.sleep(0.02)
            if (await client.get("/readyz")).status == 200:
                break
        assert (await client.get("/readyz")).status == 200
        assert len(agent.engine.history) >= 1

    with_client(agent, body, started=True)


def test_metrics_exposes_the_counters(
    dataplane: DataPlane, runtime: tuple[AgentRuntime, ManualClock]
) -> None:
    agent, clock = runtime
    frame = outer(gtpu_raw(0x20001, payload=inner_v4(src="10.46.0.3")))
    for _ in range(7):
        libbpf.test_run(dataplane.program_fd(layout.POINT_N3_INGRESS), frame)
    libbpf.test_run(dataplane.program_fd(layout.POINT_N3_INGRESS), MALFORMED_FRAME)
    clock.t += 1
    agent.engine.tick()

    async def body(client: TestClient) -> None:
        r = await client.get("/metrics")
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await r.text()
        samples = {}
        for line in text.splitlines():
            if not line.startswith("#"):
                key, value = line.rsplit(" ", 1)
                samples[key] = float(value)
        urllc_ul = 'sauron_packets_total{slice="urllc",snssai="2-000001",sst="2",sd="000001",point="n3_ingress",direction="uplink"}'
        assert samples[urllc_ul] == 7
        assert samples[
            'sauron_bytes_total{slice="urllc",snssai="2-000001",sst="2",sd="000001",point="n3_ingress",direction="uplink"}'
        ] == 7 * len(frame)
        assert (
            samples['sauron_anomalies_total{point="n3_ingress",reason="gtpu_ext_zero_length"}'] == 1
        )
        assert (
            samples[
                'sauron_gtpu_messages_total{slice="urllc",snssai="2-000001",sst="2",sd="000001",point="n3_ingress",kind="g_pdu"}'
            ]
            == 7
        )
        assert (
            samples['sauron_active_teids{slice="urllc",snssai="2-000001",sst="2",sd="000001"}'] == 1
        )
        assert 'sauron_sla_violated{slice="embb",snssai="1-000001",sst="1",sd="000001"}' in samples
        families = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
        assert len(families) == len(set(families))
        for name in families:
            assert f"# HELP {name} " in text

    with_client(agent, body)


def test_openapi_lists_exactly_the_served_routes(runtime: tuple[AgentRuntime, ManualClock]) -> None:
    app = create_app(runtime[0])
    served = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    doc = openapi_document(tuple(s.name for s in runtime[0].engine.catalog.slices))
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    assert served == documented

    async def body(client: TestClient) -> None:
        assert (await (await client.get("/api/v1/openapi.json")).json()) == doc

    with_client(runtime[0], body)


def test_stream_reaches_every_client_and_a_slow_one_stalls_nobody(
    runtime: tuple[AgentRuntime, ManualClock],
) -> None:
    agent, clock = runtime

    async def body(client: TestClient) -> None:
        readers = [await client.get("/api/v1/stream") for _ in range(3)]
        slow = await client.get("/api/v1/stream")  # never read from
        for r in (*readers, slow):
            assert r.status == 200 and r.headers["Content-Type"] == "text/event-stream"
        ticks = 20  # more than a client's queue holds
        received: list[list[float]] = [[] for _ in readers]

        async def read(i: int) -> None:
            buffer = ""
            while len(received[i]) < ticks:
                buffer += (await readers[i].content.readany()).decode()
                *done, buffer = buffer.split("\n\n")
                for event in parse_events("\n\n".join(done) + "\n\n"):
                    received[i].append(event["time"])

        tasks = [asyncio.create_task(read(i)) for i in range(len(readers))]
        for _ in range(ticks):
            clock.t += 1
            agent.engine.tick()
            await asyncio.sleep(0.01)
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)
        expected = [2_000_000.0 + n for n in range(1, ticks + 1)]
        assert all(times == expected for times in received)
        for r in (*readers, slow):
            r.close()

    with_client(agent, body)


def test_a_full_client_queue_loses_its_oldest_events() -> None:
    async def body() -> None:
        hub = StreamHub(asyncio.get_running_loop())
        client = StreamClient(buckets=False, address="127.0.0.1", since=0.0)
        queue = client.queue
        hub.clients[queue] = client
        for n in range(20):
            hub._publish({False: str(n)})
        assert hub.dropped == 20 - QUEUE_PER_CLIENT
        assert [queue.get_nowait() for _ in range(QUEUE_PER_CLIENT)] == [
            str(n) for n in range(12, 20)
        ]

    asyncio.run(body())


# --- histograms, top sessions, Prometheus histograms ---------------------------

EMBB, UL_TEID = 1, 0x10007
#: GTP-U sequence numbers sent: 5, 6, 7 and 12 never arrive (bursts of 3 and 1)
SENT_SEQS = [n for n in range(25) if n not in (5, 6, 7, 12)]


def prometheus_samples(text: str) -> dict[str, float]:
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            samples[key] = float(value)
    return samples


def test_histograms_sessions_and_prometheus_histograms(
    dataplane: DataPlane, runtime: tuple[AgentRuntime, ManualClock]
) -> None:
    agent, clock = runtime
    apply_settings(dataplane, MeasureSettings(transit_one_in=((EMBB, 1),)))
    for seq in SENT_SEQS:
        packet = ul_packet(f"p{seq}".encode(), ip_id=seq)
        frame = gtpu(packet, UL_TEID, uplink=True, seq=seq)
        libbpf.test_run(dataplane.program_fd(layout.POINT_N3_INGRESS), frame)
        libbpf.test_run(dataplane.program_fd(layout.POINT_N6_EGRESS), plain(natted(packet)))
    # N6 keeps UE-address sessions from downlink (uplink leaves NATed)
    reply = IP(src="198.51.100.9", dst="10.45.0.7") / UDP(sport=5000, dport=40000) / Raw(b"r")
    libbpf.test_run(dataplane.program_fd(layout.POINT_N6_INGRESS), plain(reply))
    clock.t += 1
    agent.engine.tick()
    sent = len(SENT_SEQS)

    async def body(client: TestClient) -> None:
        async def get(path: str) -> Any:
            r = await client.get(path)
            assert r.status == 200, await r.text()
            return await r.json()

        h = await get("/api/v1/slices/embb/histograms/transit?direction=uplink")
        schemas.HistogramDoc.model_validate(h)
        assert (h["unit"], h["intervals"], h["count"]) == ("ms", 1, sent)
        assert sum(b["count"] for b in h["buckets"]) == sent
        assert all(b["lower"] < b["upper"] for b in h["buckets"])
        p50 = h["percentiles"]["p50"]
        assert 0 < p50["value"] <= h["max"] and p50["error"] <= p50["value"]

        burst = await get("/api/v1/slices/embb/histograms/loss_burst?direction=uplink")
        assert burst["unit"] == "packets" and burst["sum"] is None
        assert {b["index"]: b["count"] for b in burst["buckets"]} == {
            GAP.bucket(3): 1,
            GAP.bucket(1): 1,
        }
        rtt = await get("/api/v1/slices/embb/histograms/ran_rtt")
        assert rtt["count"] == 0 and rtt["buckets"] == [] and rtt["percentiles"]["p99"] is None
        down = await get("/api/v1/slices/embb/histograms/transit?direction=downlink")
        assert down["count"] == 0

        kpis = (await get("/api/v1/slices/embb/kpis"))["points"][-1]
        loss = kpis["uplink"]["loss"]
        assert (loss["sequence_lost"], loss["sequence_received"]) == (4, sent)
        assert loss["sequence_ratio"] == pytest.approx(4 / 25)
        assert kpis["uplink"]["transit"]["samples"] == sent
        assert kpis["sla"] == "at risk"  # eMBB allows 1 % loss: one bad interval so far

        top = await get("/api/v1/slices/embb/sessions?limit=5")
        schemas.Sessions.model_validate(top)
        assert top["active"] == 1
        (session,) = top["sessions"]
        assert (session["teid"], session["ue_address"], session["qfi"]) == (
            "0x00010007",
            "10.45.0.7",
            9,
        )
        assert (session["uplink_packets"], session["downlink_packets"]) == (sent, 0)
        by_ue = await get("/api/v1/slices/embb/sessions?by=ue")
        (ue,) = by_ue["sessions"]
        assert (ue["ue_address"], ue["teid"], ue["downlink_packets"]) == ("10.45.0.7", None, 1)

        samples = prometheus_samples(await (await client.get("/metrics")).text())
        name = "sauron_transit_latency_seconds"
        labels = 'slice="embb",snssai="1-000001",sst="1",sd="000001",direction="uplink"'
        assert samples[f"{name}_count{{{labels}}}"] == sent
        assert samples[f'{name}_bucket{{{labels},le="+Inf"}}'] == sent
        cumulative = [v for k, v in samples.items() if k.startswith(f"{name}_bucket{{{labels},")]
        assert cumulative == sorted(cumulative) and len(cumulative) == 28
        assert 0 < samples[f"{name}_sum{{{labels}}}"] <= sent * h["max"] / 1e3
        assert samples[f"sauron_sequence_lost_total{{{labels}}}"] == 4
        assert samples[f"sauron_transit_matched_total{{{labels}}}"] == sent
        assert (
            samples[
                'sauron_ran_rtt_seconds_count{slice="embb",snssai="1-000001",sst="1",sd="000001"}'
            ]
            == 0
        )

    with_client(agent, body)


#: a UE address and TEID no catalog slice claims: slice 0, unclassified
STRAY_UE, STRAY_TEID = "10.99.0.7", 0x00990007


def test_unclassified_answers_its_kpi_routes(
    dataplane: DataPlane, runtime: tuple[AgentRuntime, ManualClock]
) -> None:
    agent, clock = runtime
    apply_settings(dataplane, MeasureSettings(transit_one_in=((layout.UNCLASSIFIED_SLICE, 1),)))
    sent = 6
    for n in range(sent):
        packet = IP(src=STRAY_UE, dst="198.51.100.9", id=n) / UDP(sport=40000, dport=5000)
        packet /= Raw(f"stray{n}".encode())
        libbpf.test_run(
            dataplane.program_fd(layout.POINT_N3_INGRESS),
            gtpu(packet, STRAY_TEID, uplink=True, seq=n),
        )
        libbpf.test_run(dataplane.program_fd(layout.POINT_N6_EGRESS), plain(natted(packet)))
    clock.t += 1
    agent.engine.tick()

    async def body(client: TestClient) -> None:
        async def get(path: str) -> Any:
            r = await client.get(path)
            assert r.status == 200, await r.text()
            return await r.json()

        one = await get("/api/v1/slices/unclassified")
        schemas.SliceDoc.model_validate(one)
        assert (one["name"], one["id"], one["snssai"]) == ("unclassified", 0, None)
        assert one["sla_targets"] == {} and one["status"] == "unmeasured"
        assert one["kpis"]["uplink"]["packets_in"] == sent and one["kpis"]["active_teids"] == 1

        series = await get("/api/v1/slices/unclassified/kpis")
        schemas.KpiSeries.model_validate(series)
        assert series["slice"] == "unclassified"
        assert [p["uplink"]["packets_out"] for p in series["points"]] == [sent]

        h = await get("/api/v1/slices/unclassified/histograms/transit?direction=uplink")
        schemas.HistogramDoc.model_validate(h)
        assert (h["slice"], h["count"]) == ("unclassified", sent)
        assert sum(b["count"] for b in h["buckets"]) == sent

        top = await get("/api/v1/slices/unclassified/sessions")
        schemas.Sessions.model_validate(top)
        (session,) = top["sessions"]
        assert top["active"] == 1 and session["teid"] == f"0x{STRAY_TEID:08x}"
        assert session["uplink_packets"] == sent

        # the list stays the catalog's; the catalog slices saw none of it
        listed = await get("/api/v1/slices")
        assert [s["name"] for s in listed["slices"]] == ["embb", "urllc", "mmtc"]
        assert all(s["kpis"]["uplink"]["packets_in"] == 0 for s in listed["slices"])

        missing = await client.get("/api/v1/slices/nope/kpis")
        assert missing.status == 404
        assert "embb, urllc, mmtc, unclassified" in (await missing.json())["detail"]

    with_client(agent, body)


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/api/v1/slices/embb/histograms/transit", "direction"),
        ("/api/v1/slices/embb/histograms/transit?direction=sideways", "direction"),
        ("/api/v1/slices/embb/histograms/ran_rtt?direction=uplink", "direction"),
        ("/api/v1/slices/embb/histograms/transit?direction=uplink&since=x", "since"),
        ("/api/v1/slices/embb/sessions?limit=0", "limit"),
        ("/api/v1/slices/embb/sessions?limit=many", "limit"),
        ("/api/v1/slices/embb/sessions?by=imsi", "by"),
    ],
)
def test_bad_histogram_and_session_parameters(
    runtime: tuple[AgentRuntime, ManualClock], path: str, param: str
) -> None:
    async def body(client: TestClient) -> None:
        r = await client.get(path)
        assert r.status == 400 and (await r.json())["param"] == param

    with_client(runtime[0], body)


def test_unknown_histogram_is_not_found(runtime: tuple[AgentRuntime, ManualClock]) -> None:
    async def body(client: TestClient) -> None:
        r = await client.get("/api/v1/slices/embb/histograms/jitter?direction=uplink")
        assert r.status == 404 and "transit" in (await r.json())["detail"]

    with_client(runtime[0], body)


# --- token and rate --------------------------------------------------------------


def test_token_guards_everything_but_the_health_probes(
    runtime: tuple[AgentRuntime, ManualClock],
) -> None:
    token = "s3cret-token"

    async def body(client: TestClient) -> None:
        for path in ("/api/v1/slices", "/metrics", "/api/v1/stream", "/api/v1/openapi.json"):
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
                r = await client.get(path, headers=headers)
                assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
                assert r.content_type == "application/problem+json"
        ok = await client.get("/api/v1/slices", headers={"Authorization": f"Bearer {token}"})
        assert ok.status == 200
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/readyz")).status == 503  # open, and not ready yet

    with_client(runtime[0], body, options=ServiceOptions(token=token))


def test_rate_limit_answers_429_with_retry_after(runtime: tuple[AgentRuntime, ManualClock]) -> None:
    async def body(client: TestClient) -> None:
        statuses = [(await client.get("/healthz")).status for _ in range(8)]
        assert statuses == [200] * 5 + [429] * 3
        r = await client.get("/api/v1/slices")
        assert r.status == 429 and int(r.headers["Retry-After"]) >= 1
        assert (await r.json())["status"] == 429

    with_client(runtime[0], body, options=ServiceOptions(rate_per_s=0.1, burst=5))


def test_request_bodies_are_bounded(runtime: tuple[AgentRuntime, ManualClock]) -> None:
    async def body(client: TestClient) -> None:
        r = await client.post("/api/v1/slices", data=b"x" * 100_000)
        assert r.status in (405, 413)  # no route takes a body; none is read
        assert r.content_type == "application/problem+json"

    with_client(runtime[0], body)


def test_buckets_on_request_add_up_to_the_histogram_route_and_the_geometry_bounds_them(
    dataplane: DataPlane, runtime: tuple[AgentRuntime, ManualClock]
) -> None:
    """What the dashboard's heatmaps draw: with buckets=true each latency
    carries its raw counts by index, the same in the series and the stream,
    adding up to the samples; the geometry route bounds each index as the
    histogram route does."""
    agent, clock = runtime
    apply_settings(dataplane, MeasureSettings(transit_one_in=((1, 1),)))
    for n in range(6):
        packet = ul_packet(f"b{n}".encode(), ip_id=300 + n)
        libbpf.test_run(
            dataplane.program_fd(layout.POINT_N3_INGRESS), gtpu(packet, 0x10003, uplink=True)
        )
        libbpf.test_run(dataplane.program_fd(layout.POINT_N6_EGRESS), plain(natted(packet)))
    clock.t += 1
    agent.engine.tick()

    async def body(client: TestClient) -> None:
        plain_doc = await (await client.get("/api/v1/slices/embb/kpis")).json()
        assert "buckets" not in plain_doc["points"][-1]["uplink"]["transit"]
        series = await (await client.get("/api/v1/slices/embb/kpis?buckets=true")).json()
        schemas.KpiSeries.model_validate(series)
        transit = series["points"][-1]["uplink"]["transit"]
        assert transit["samples"] == 6 and sum(transit["buckets"].values()) == 6
        merged = await (
            await client.get("/api/v1/slices/embb/histograms/transit?direction=uplink")
        ).json()
        geometry = await (await client.get("/api/v1/histograms/geometry")).json()
        schemas.Geometries.model_validate(geometry)
        by_index = {b["index"]: b for b in geometry["latency"]["buckets"]}
        for b in merged["buckets"]:
            assert transit["buckets"][str(b["index"])] == b["count"]
            assert (by_index[b["index"]]["lower"], by_index[b["index"]]["upper"]) == (
                b["lower"],
                b["upper"],
            )
        assert len(geometry["loss_burst"]["buckets"]) == GAP.buckets
        refused = await client.get("/api/v1/slices/embb/kpis?buckets=yes")
        assert refused.status == 400 and (await refused.json())["param"] == "buckets"

        stream = await client.get("/api/v1/stream?buckets=true")
        clock.t += 1
        await asyncio.get_running_loop().run_in_executor(None, agent.engine.tick)
        text = ""
        while "\n\n" not in text.partition("event: snapshot")[2]:  # one whole event
            text += (await asyncio.wait_for(stream.content.readany(), 10)).decode()
        event = parse_events(text)[0]
        schemas.SnapshotDoc.model_validate(event)
        assert event["slices"]["embb"]["uplink"]["transit"]["buckets"] == {}
        stream.close()

    with_client(agent, body)


def test_the_kpi_table_route_and_a_histogram_for_each_latency_kpi(
    dataplane: DataPlane, runtime: tuple[AgentRuntime, ManualClock]
) -> None:
    """/api/v1/kpis is the table the dashboard builds its figures from, and
    the histogram route serves each latency KPI it lists: with a direction
    when the KPI is per direction (and only then)."""
    agent, clock = runtime
    apply_settings(dataplane, MeasureSettings(transit_one_in=((1, 1),)))
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})  # jitter pairs samples of one CPU
    try:
        for n in range(3):
            packet = ul_packet(f"k{n}".encode(), ip_id=400 + n)
            libbpf.test_run(
                dataplane.program_fd(layout.POINT_N3_INGRESS), gtpu(packet, 0x10003, uplink=True)
            )
            libbpf.test_run(dataplane.program_fd(layout.POINT_N6_EGRESS), plain(natted(packet)))
    finally:
        os.sched_setaffinity(0, cpus)
    clock.t += 1
    agent.engine.tick()

    async def body(client: TestClient) -> None:
        table = await (await client.get("/api/v1/kpis")).json()
        schemas.KpiTable.model_validate(table)
        assert [k["name"] for k in table["latency"]] == [k.name for k in LATENCY_KPIS]
        assert [k["name"] for k in table["traffic"]] == [k.name for k in TRAFFIC_KPIS]
        assert [(k["name"], k["sla_key"]) for k in table["security"]] == [
            (k.name, f"max_security_events_per_s.{k.name}") for k in SECURITY_KPIS
        ]
        counts = {}
        for kpi in table["latency"]:
            query = "?direction=uplink" if kpi["per_direction"] else ""
            r = await client.get(f"/api/v1/slices/embb/histograms/{kpi['name']}{query}")
            doc = await r.json()
            assert r.status == 200, doc
            schemas.HistogramDoc.model_validate(doc)
            counts[kpi["name"]] = doc["count"]
        # three transit samples on one CPU: two differences between them
        assert counts["transit"] == 3 and counts["transit_jitter"] == 2

    with_client(agent, body)


def test_dashboard_files_are_served_and_no_path_leaves_their_folder(
    runtime: tuple[AgentRuntime, ManualClock],
) -> None:
    async def body(client: TestClient) -> None:
        page = await client.get("/")
        assert (
            page.status == 200 and "default-src 'self'" in page.headers["Content-Security-Policy"]
        )
        script = await client.get("/static/dashboard.js")
        assert script.status == 200 and "javascript" in script.content_type
        for path in ("/static/../routes.py", "/static/%2e%2e/routes.py", "/static/vendor"):
            refused = await client.get(path)
            assert refused.status == 404, path
            assert refused.content_type == "application/problem+json"

    with_client(runtime[0], body)


# --- who reads per-UE data ------------------------------------------------------

#: the last, a path the router matches to a per-session route though it does
#: not read like one once decoded: the route decides, not the spelling
PER_UE = ("/api/v1/sessions", "/api/v1/slices/embb/sessions", "/api/v1/slices/a%2Fb/sessions")
AGGREGATES = (
    "/api/v1/slices",
    "/api/v1/slices/embb/kpis",
    "/api/v1/sla",
    "/api/v1/security",
    "/api/v1/slices/embb/security",
    "/metrics",
)


def test_per_ue_routes_need_the_token_or_the_unix_socket(
    runtime: tuple[AgentRuntime, ManualClock], tmp_path: Path
) -> None:
    """Without a token the aggregates stay open on loopback and the
    per-session routes answer 403 over TCP, saying how to ask; over the
    UNIX socket the agent's own user asks without a token."""
    agent, clock = runtime
    clock.t += 1
    agent.engine.tick()

    async def run() -> None:
        app = create_app(agent, options=ServiceOptions(rate_per_s=0))
        runner = web.AppRunner(app)
        await runner.setup()
        path = tmp_path / "api.sock"
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        await web.UnixSite(runner, str(path)).start()
        port = runner.addresses[0][1]
        try:
            async with aiohttp.ClientSession() as tcp:
                for route in AGGREGATES:
                    async with tcp.get(f"http://127.0.0.1:{port}{route}") as r:
                        assert r.status == 200, route
                for route in PER_UE:
                    url = URL(f"http://127.0.0.1:{port}{route}", encoded=True)
                    async with tcp.get(url) as r:
                        assert r.status == 403, route
                        doc = await r.json(content_type=None)
                        assert "service.token_file" in doc["detail"]
                        assert "service.socket" in doc["detail"]
            async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(str(path))) as unix:
                for route in (*AGGREGATES, *PER_UE[:-1]):
                    async with unix.get(URL(f"http://localhost{route}", encoded=True)) as r:
                        assert r.status == 200, route
        finally:
            await runner.cleanup()

    asyncio.run(run())


def test_with_a_token_per_ue_routes_take_it(runtime: tuple[AgentRuntime, ManualClock]) -> None:
    async def body(client: TestClient) -> None:
        for route in PER_UE[:-1]:
            assert (await client.get(URL(route, encoded=True))).status == 200
            refused = await client.get(
                URL(route, encoded=True), headers={"Authorization": "Bearer no"}
            )
            assert refused.status == 401

    with_client(runtime[0], body)
