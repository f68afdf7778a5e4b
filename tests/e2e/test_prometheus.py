"""Prometheus (Debian's, a real process on loopback) scrapes the agent's
/metrics with its API token, and what an operator then reads through
Prometheus's own query API is what the agent measured: the per-slice
counts equal the agent's, with the slice's one label set, and
`histogram_quantile` over the transit buckets lands in the bucket of the
percentile the agent's API gives; the security checks' counts and the
detections opened are the data path's and the detector's. The agent is its
runtime over the real programs, fed G-PDUs through BPF_PROG_TEST_RUN and ticked by the test, so
every scrape between two ticks reads the same numbers."""

from __future__ import annotations

import json
import math
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from frames import STRAY_TEID, gtpu, plain, stray, ul_packet
from manual_clock import ManualClock
from prometheus_server import PrometheusServer
from served import serve_in_thread

from sauron.abi import layout
from sauron.abi.kpis import SECURITY_KPIS
from sauron.agent.runtime import AgentRuntime, ProgramMaps
from sauron.agent.securing import Securing
from sauron.bpf import libbpf
from sauron.bpf.loader import DataPlane
from sauron.bpf.measurements import MeasureSettings, apply_settings
from sauron.catalog import Catalog
from sauron.export.prometheus import LE_SHIFTS
from sauron.security.detect import SPOOFING_UE, TEID_SCAN
from sauron.security.settings import SecurityConfig
from sauron.service.app import ServiceOptions, create_app

pytestmark = [pytest.mark.kernel]

TOKEN = "prometheus-scrapes-with-this-token"
EMBB, UL_TEID = 1, 0x10007
EMBB_LABELS = 'slice="embb",snssai="1-000001",sst="1",sd="000001"'


@pytest.fixture()
def served(dataplane: DataPlane, catalog: Catalog) -> Iterator[tuple[DataPlane, AgentRuntime, str]]:
    apply_settings(dataplane, MeasureSettings(transit_one_in=((EMBB, 1),)))
    runtime = AgentRuntime(
        catalog, ProgramMaps(dataplane, shortcut=False), clock=ManualClock(4_000_000.0)
    )
    with serve_in_thread(create_app(runtime, ServiceOptions(token=TOKEN))) as url:
        yield dataplane, runtime, url


def send(dataplane: DataPlane, count: int, first: int) -> None:
    for n in range(first, first + count):
        packet = ul_packet(f"p{n}".encode(), ip_id=n)
        libbpf.test_run(
            dataplane.program_fd(layout.POINT_N3_INGRESS), gtpu(packet, UL_TEID, uplink=True, seq=n)
        )
        libbpf.test_run(dataplane.program_fd(layout.POINT_N6_EGRESS), plain(packet))


def api_get(url: str, route: str) -> Any:
    request = urllib.request.Request(url + route, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as r:
        return json.load(r)


def test_prometheus_reads_the_agents_numbers(
    served: tuple[DataPlane, AgentRuntime, str], tmp_path: Path
) -> None:
    dataplane, runtime, url = served
    clock = runtime.engine.clock
    assert isinstance(clock, ManualClock)
    prometheus = PrometheusServer(tmp_path / "prometheus", url.removeprefix("http://"), TOKEN)
    try:
        sent = 0
        for batch in (30, 45):
            send(dataplane, batch, sent)
            sent += batch
            clock.t += 1
            runtime.engine.tick()
            # the counts: Prometheus's equal the agent's, with the slice's labels
            expr = f'sauron_packets_total{{{EMBB_LABELS},point="n3_ingress",direction="uplink"}}'
            assert prometheus.value_when(expr, sent) == sent
        (series,) = prometheus.query(
            f'sauron_bytes_total{{{EMBB_LABELS},point="n3_ingress",direction="uplink"}}'
        )
        agent_bytes = runtime.engine.counters.slice(
            layout.POINT_N3_INGRESS, EMBB, layout.DIR_UPLINK
        ).bytes
        assert float(series["value"][1]) == agent_bytes
        assert series["metric"]["job"] == "sauron"

        # histogram_quantile lands in the power-of-two bucket of the API's p99
        transit = f'sauron_transit_latency_seconds_bucket{{{EMBB_LABELS},direction="uplink"}}'
        # (the exposition's buckets count since the programs loaded: the API's
        # window is every interval)
        count = transit.replace("_bucket", "_count")
        prometheus.value_when(count, sent)
        (p99,) = prometheus.query(f"histogram_quantile(0.99, {transit})")
        from_prometheus_s = float(p99["value"][1])
        doc = api_get(url, "/api/v1/slices/embb/histograms/transit?direction=uplink&since=0")
        assert doc["count"] == sent
        from_api_s = doc["percentiles"]["p99"]["value"] / 1e3
        bounds = [0.0] + [(1 << shift) / 1e9 for shift in LE_SHIFTS] + [math.inf]
        bucket = next(i for i in range(len(bounds) - 1) if from_api_s < bounds[i + 1])
        assert bounds[bucket] <= from_prometheus_s <= bounds[bucket + 1], (
            from_prometheus_s,
            from_api_s,
            bounds[bucket : bucket + 2],
        )

        # the SLA state Prometheus holds is the agent's
        status = api_get(url, "/api/v1/sla")["status"]["embb"]
        states = {
            r["metric"]["state"]: float(r["value"][1])
            for r in prometheus.query(f"sauron_sla_state{{{EMBB_LABELS}}}")
        }
        assert {s for s, v in states.items() if v == 1} == ({status} - {"unmeasured"})
    finally:
        prometheus.close()


def test_prometheus_reads_the_security_counts_and_detections(
    served: tuple[DataPlane, AgentRuntime, str], tmp_path: Path
) -> None:
    """The agent's security checks as `sauron run` wires them (a scan
    threshold of 3): four unknown TEIDs from the gNB within a second
    (URLLC's UE: four unknown_teid frames and one teid_scan) and one
    eMBB TEID from a public source (ue_source_spoofed, no detection)."""
    dataplane, runtime, url = served
    clock = runtime.engine.clock
    assert isinstance(clock, ManualClock)
    catalog = runtime.engine.catalog
    urllc = catalog.get("urllc")
    assert urllc is not None
    security = Securing(SecurityConfig(scan_threshold=3), dataplane, 1.0, wall=clock)
    runtime.secure(security)
    prometheus = PrometheusServer(tmp_path / "prometheus", url.removeprefix("http://"), TOKEN)
    try:
        clock.t += 1
        runtime.engine.tick()
        zero = 'sauron_security_events_total{slice="urllc",kind="unknown_teid"}'
        assert prometheus.value_when(zero, 0) == 0  # there before the first frame
        for teid in range(STRAY_TEID, STRAY_TEID + 4):
            libbpf.test_run(dataplane.program_fd(layout.POINT_N3_INGRESS), stray(teid=teid))
        libbpf.test_run(dataplane.program_fd(layout.POINT_N3_INGRESS), stray("8.8.8.8", UL_TEID))
        clock.t += 1
        runtime.engine.tick()
        counters = runtime.engine.counters
        assert counters.security_count(urllc.id, layout.SEC_UNKNOWN_TEID) == 4
        assert counters.security_count(EMBB, layout.SEC_UE_SOURCE_SPOOFED) == 1
        prometheus.value_when(zero, 4)
        held = {
            (r["metric"]["slice"], r["metric"]["kind"]): float(r["value"][1])
            for r in prometheus.query("sauron_security_events_total")
        }
        assert held == {
            (catalog.name_of(sid), kpi.name): counters.security_count(sid, kind)
            for sid in (0, *(s.id for s in catalog.slices))
            for kind, kpi in enumerate(SECURITY_KPIS)
        }
        scans = f'sauron_security_detections_total{{slice="urllc",kind="{TEID_SCAN}"}}'
        assert prometheus.value_when(scans, 1) == 1
        opened = {
            (r["metric"]["slice"], r["metric"]["kind"]): float(r["value"][1])
            for r in prometheus.query("sauron_security_detections_total")
        }
        assert opened == {
            (catalog.name_of(sid), kind): security.opened().get((sid, kind), 0)
            for sid in (0, *(s.id for s in catalog.slices))
            for kind in (TEID_SCAN, SPOOFING_UE)
        }
        assert sum(opened.values()) == 1
        (series,) = prometheus.query(scans)
        assert series["metric"]["snssai"] == str(urllc.spec.snssai)
    finally:
        prometheus.close()
