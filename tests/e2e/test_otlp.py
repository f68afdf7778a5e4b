"""The agent's metrics over OTLP/HTTP, as an OpenTelemetry Collector gets
them: the official exporter posts to a receiver on loopback that stands in
for the Collector (none is installable here): an aiohttp server answering
`POST /v1/metrics` that decodes each body with the official
`opentelemetry-proto` message ExportMetricsServiceRequest (gunzipped when
the exporter compresses). The agent is its runtime over the real programs,
fed G-PDUs through BPF_PROG_TEST_RUN and ticked by the test: every counter
received (the traffic's, the security checks') equals the engine's, the transit histogram has the data path's
bounds and the agent's count in every bucket, the resource and the headers
are the configured ones, and OpenTelemetry's variables win over the file."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_process import agent_config, start_agent, stop_agent, veth_namespace
from aiohttp import web
from frames import gtpu, plain, stray, ul_packet
from manual_clock import ManualClock
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from timeseries import free_port

from sauron import __version__
from sauron.abi import layout
from sauron.abi.histogram import LATENCY
from sauron.abi.kpis import LATENCY_BY_NAME, SECURITY_KPIS
from sauron.agent.runtime import AgentRuntime, ProgramMaps
from sauron.bpf import libbpf
from sauron.bpf.loader import DataPlane
from sauron.bpf.measurements import MeasureSettings, apply_settings
from sauron.bpf.security import set_checks
from sauron.catalog import Catalog
from sauron.export.otlp.exporter import EXPORTING, FAILING, OtlpExporter
from sauron.export.otlp.settings import OtlpConfig

pytestmark = [pytest.mark.kernel]

EMBB, UL_TEID = 1, 0x10007
NODE = "upf-otlp-test"
POINTS = {name: point for point, name in layout.POINT_NAMES.items()}
DIRECTIONS = {name: d for d, name in layout.DIRECTION_NAMES.items()}


class CollectorStandIn:
    """Stands in for an OpenTelemetry Collector's OTLP/HTTP receiver: takes
    `POST /v1/metrics`, keeps each request's headers and decoded body."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], ExportMetricsServiceRequest]] = []
        self.arrived = asyncio.Event()
        self.runner: web.AppRunner | None = None

    async def metrics(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        message = ExportMetricsServiceRequest()
        message.ParseFromString(body)
        self.received.append(({k.lower(): v for k, v in request.headers.items()}, message))
        self.arrived.set()
        return web.Response(content_type="application/x-protobuf", body=b"")

    async def start(self, port: int) -> None:
        # the body as sent: the test, not aiohttp, undoes the compression
        app = web.Application(handler_args={"auto_decompress": False})
        app.router.add_post("/v1/metrics", self.metrics)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()

    async def next_request(self) -> tuple[dict[str, str], ExportMetricsServiceRequest]:
        await asyncio.wait_for(self.arrived.wait(), timeout=10)
        self.arrived.clear()
        return self.received[-1]

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture()
def no_otel_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The test's OTEL_* variables only, not the caller's."""
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        monkeypatch.delenv(name)
    yield monkeypatch


def runtime_over(dataplane: DataPlane, catalog: Catalog, exporter: OtlpExporter) -> AgentRuntime:
    apply_settings(dataplane, MeasureSettings(transit_one_in=((EMBB, 1),)))
    return AgentRuntime(
        catalog,
        ProgramMaps(dataplane, shortcut=False),
        clock=ManualClock(4_000_000.0),
        exporters=[exporter],
    )


def send(dataplane: DataPlane, count: int, first: int) -> None:
    """`count` uplink G-PDUs of eMBB through the UPF: in on N3, out on N6."""
    for n in range(first, first + count):
        packet = ul_packet(f"p{n}".encode(), ip_id=n)
        libbpf.test_run(
            dataplane.program_fd(layout.POINT_N3_INGRESS), gtpu(packet, UL_TEID, uplink=True, seq=n)
        )
        libbpf.test_run(dataplane.program_fd(layout.POINT_N6_EGRESS), plain(packet))


async def tick(runtime: AgentRuntime) -> None:
    """One interval, in a thread as the runtime ticks (the exporter hears
    its snapshot there)."""
    clock = runtime.engine.clock
    assert isinstance(clock, ManualClock)
    clock.t += 1
    await asyncio.get_running_loop().run_in_executor(None, runtime.engine.tick)


async def until(condition: Callable[[], bool], timeout_s: float = 10) -> None:
    """Waits for the exporter's thread to have noted what the test expects."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        await asyncio.sleep(0.02)


def attributes(point: Any) -> dict[str, str]:
    return {kv.key: kv.value.string_value for kv in point.attributes}


def metrics_of(message: ExportMetricsServiceRequest) -> dict[str, Any]:
    (resource_metrics,) = message.resource_metrics
    (scope,) = resource_metrics.scope_metrics
    return {m.name: m for m in scope.metrics}


def check_counters_are_the_engines(
    message: ExportMetricsServiceRequest, runtime: AgentRuntime
) -> None:
    """Every point of the per-slice traffic counters equals the engine's
    counter of its slice, point and direction; monotonic and cumulative."""
    c = runtime.engine.counters
    ids = {
        runtime.engine.catalog.name_of(0): 0,
        **{s.name: s.id for s in runtime.engine.catalog.slices},
    }
    metrics = metrics_of(message)
    for name, stat in (("sauron_packets", "packets"), ("sauron_bytes", "bytes")):
        metric = metrics[name]
        assert metric.WhichOneof("data") == "sum"
        assert metric.sum.is_monotonic
        assert metric.sum.aggregation_temporality == 2  # AGGREGATION_TEMPORALITY_CUMULATIVE
        seen = set()
        for point in metric.sum.data_points:
            labels = attributes(point)
            key = (labels["slice"], labels["point"], labels["direction"])
            seen.add(key)
            expected = getattr(c.slice(POINTS[key[1]], ids[key[0]], DIRECTIONS[key[2]]), stat)
            assert point.as_int == expected, (name, key)
        assert len(seen) == len(ids) * len(POINTS) * len(DIRECTIONS)
    assert metrics["sauron_bytes"].unit == "By"


def check_security_counts_are_the_engines(
    message: ExportMetricsServiceRequest, runtime: AgentRuntime
) -> None:
    """Every slice's count of every security check, a cumulative monotonic
    Sum equal to the data path's counter."""
    c = runtime.engine.counters
    catalog = runtime.engine.catalog
    ids = {catalog.name_of(0): 0, **{s.name: s.id for s in catalog.slices}}
    kinds = {k.name: kind for kind, k in enumerate(SECURITY_KPIS)}
    metric = metrics_of(message)["sauron_security_events"]
    assert metric.sum.is_monotonic and metric.sum.aggregation_temporality == 2
    got = {
        (attributes(p)["slice"], attributes(p)["kind"]): p.as_int for p in metric.sum.data_points
    }
    assert got == {
        (name, kind): c.security_count(sid, k)
        for name, sid in ids.items()
        for kind, k in kinds.items()
    }
    assert got[("urllc", "unknown_teid")] > 0


def check_transit_histogram(
    message: ExportMetricsServiceRequest, runtime: AgentRuntime, sent: int
) -> None:
    """eMBB's uplink transit: the geometry's bounds in seconds, the agent's
    count in every bucket, its sum and count."""
    metric = metrics_of(message)["sauron_transit_latency_seconds"]
    assert metric.unit == "s"
    assert metric.histogram.aggregation_temporality == 2
    (point,) = [
        p
        for p in metric.histogram.data_points
        if attributes(p)["slice"] == "embb" and attributes(p)["direction"] == "uplink"
    ]
    assert attributes(point) == {
        "slice": "embb",
        "snssai": "1-000001",
        "sst": "1",
        "sd": "000001",
        "direction": "uplink",
    }
    # each bucket's lower bound above the underflow, in seconds
    assert list(point.explicit_bounds) == [
        LATENCY.lower(i) / 1e9 for i in range(1, LATENCY.buckets)
    ]
    agent = runtime.engine.counters.latency[
        (LATENCY_BY_NAME["transit"].metric, EMBB, layout.DIR_UPLINK)
    ]
    assert list(point.bucket_counts) == agent.buckets
    assert point.count == sum(agent.buckets) == sent
    assert point.sum == pytest.approx(agent.total / 1e9, rel=1e-12)


def test_otlp_environment_wins_and_the_collector_gets_the_agents_numbers(
    dataplane: DataPlane, catalog: Catalog, no_otel_environment: pytest.MonkeyPatch
) -> None:
    port = free_port()
    env = no_otel_environment
    env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    env.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-scope-orgid=slices-lab")
    env.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    env.setenv("OTEL_SERVICE_NAME", "upf-telemetry")
    env.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=lab,host.name=from-env")
    # the file's endpoint is nobody's: the environment's must win
    config = OtlpConfig(
        endpoint=f"http://127.0.0.1:{free_port()}",
        headers={"x-scope-orgid": "from-the-file"},
        resource_attributes={"k8s.cluster.name": "edge-1"},
    )
    exporter = OtlpExporter(config, NODE)
    runtime = runtime_over(dataplane, catalog, exporter)
    set_checks(dataplane, True)

    async def scenario() -> None:
        collector = CollectorStandIn()
        await collector.start(port)
        await exporter.start(runtime.engine)
        try:
            sent = 0
            first_start = None
            for batch in (20, 35):
                send(dataplane, batch, sent)
                sent += batch
                for _ in range(batch // 5):  # of an unknown TEID, from a UE of URLLC
                    libbpf.test_run(dataplane.program_fd(layout.POINT_N3_INGRESS), stray())
                await tick(runtime)
                headers, message = await collector.next_request()
                assert headers["x-scope-orgid"] == "slices-lab"
                assert headers["content-encoding"] == "gzip"
                assert headers["content-type"] == "application/x-protobuf"
                check_counters_are_the_engines(message, runtime)
                check_transit_histogram(message, runtime, sent)
                check_security_counts_are_the_engines(message, runtime)
                (point,) = [
                    p
                    for p in metrics_of(message)["sauron_packets"].sum.data_points
                    if attributes(p)["slice"] == "embb"
                    and attributes(p)["point"] == "n3_ingress"
                    and attributes(p)["direction"] == "uplink"
                ]
                assert point.as_int == sent
                assert point.time_unix_nano == round(runtime.engine.clock() * 1e9)
                # one origin for the cumulative series
                first_start = first_start or point.start_time_unix_nano
                assert point.start_time_unix_nano == first_start < point.time_unix_nano
            resource = {
                kv.key: kv.value.string_value
                for kv in message.resource_metrics[0].resource.attributes
            }
            assert resource["service.name"] == "upf-telemetry"
            assert resource["service.version"] == __version__
            assert resource["service.instance.id"] == NODE
            assert resource["host.name"] == "from-env"
            assert resource["deployment.environment"] == "lab"
            assert resource["k8s.cluster.name"] == "edge-1"
            await until(lambda: exporter.stats.exports_ok == 2)
            detail = exporter.health().detail
            assert detail is not None
            assert detail["state"] == EXPORTING
            assert detail["exports_failed"] == detail["intervals_skipped"] == 0
        finally:
            await exporter.stop()
            await collector.close()

    asyncio.run(scenario())


def test_otlp_from_the_file_rides_out_a_collector_away(
    dataplane: DataPlane, catalog: Catalog, no_otel_environment: pytest.MonkeyPatch
) -> None:
    """Nobody listens for the first interval: it fails after the exporter's
    own retries and says so in its health and /metrics; the next interval
    that goes through carries every count, the missed interval's too."""
    port = free_port()
    config = OtlpConfig(
        endpoint=f"http://127.0.0.1:{port}", headers={"x-tenant": "ran-7"}, timeout_s=0.5
    )
    exporter = OtlpExporter(config, NODE)
    runtime = runtime_over(dataplane, catalog, exporter)

    async def scenario() -> None:
        collector = CollectorStandIn()
        await exporter.start(runtime.engine)
        try:
            send(dataplane, 15, 0)
            await tick(runtime)
            await until(lambda: exporter.stats.exports_failed == 1)
            detail = exporter.health().detail
            assert detail is not None
            assert detail["state"] == FAILING
            assert detail["exports_failed"] == 1
            assert detail["last_error"]
            assert exporter.health().ok  # an outage, not a configuration to fix
            runtime_text = runtime.exposition()[1]
            assert 'sauron_otlp_exports_total{result="failed"} 1' in runtime_text
            assert 'sauron_otlp_state{state="failing"} 1' in runtime_text

            await collector.start(port)
            send(dataplane, 25, 15)
            await tick(runtime)
            headers, message = await collector.next_request()
            assert headers["x-tenant"] == "ran-7"
            assert "content-encoding" not in headers
            check_counters_are_the_engines(message, runtime)
            check_transit_histogram(message, runtime, 40)
            await until(lambda: exporter.stats.exports_ok == 1)
            assert exporter.stats.state == EXPORTING
            runtime_text = runtime.exposition()[1]
            assert 'sauron_otlp_exports_total{result="ok"} 1' in runtime_text
            assert "sauron_otlp_last_success_timestamp_seconds 0\n" not in runtime_text
        finally:
            await exporter.stop()
            await collector.close()

    asyncio.run(scenario())


@pytest.mark.netns
def test_sauron_run_exports_to_the_endpoint_in_its_environment(
    tmp_path: Path, no_otel_environment: pytest.MonkeyPatch
) -> None:
    """`sauron run` as an operator starts it, on a veth pair in a namespace
    of its own: the environment's endpoint gets the agent's intervals as
    the resource of its node, /readyz and /metrics say the exports go
    through, and SIGTERM ends it cleanly."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    environment["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{port}"

    async def scenario() -> None:
        collector = CollectorStandIn()
        await collector.start(port)
        loop = asyncio.get_running_loop()
        with veth_namespace(f"otlp-run-{os.getpid()}") as ns:
            config = agent_config(tmp_path / "agent.yaml", ns, node="upf-otlp-run")
            agent, url = await loop.run_in_executor(
                None, lambda: start_agent(config, environment=environment)
            )
            try:
                for _ in range(2):
                    _, message = await collector.next_request()
                resource = {
                    kv.key: kv.value.string_value
                    for kv in message.resource_metrics[0].resource.attributes
                }
                assert resource["service.name"] == "sauron"
                assert resource["service.instance.id"] == resource["host.name"] == "upf-otlp-run"
                assert "sauron_packets" in metrics_of(message)
                ready = await loop.run_in_executor(None, get_json, url + "/readyz")
                assert ready["otlp"]["state"] == EXPORTING, ready
                assert ready["otlp"]["endpoint"] == f"http://127.0.0.1:{port}/v1/metrics"
                assert ready["otlp"]["exports_ok"] >= 1
                text = await loop.run_in_executor(None, get_text, url + "/metrics")
                assert 'sauron_otlp_state{state="exporting"} 1' in text
            finally:
                out = await loop.run_in_executor(None, stop_agent, agent)
            assert agent.returncode == 0, out
        await collector.close()

    asyncio.run(scenario())


def get_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as r:
        return str(r.read().decode())


def get_json(url: str) -> Any:
    return json.loads(get_text(url))
