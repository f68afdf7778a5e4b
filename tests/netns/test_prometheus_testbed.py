"""Prometheus (Debian's, a real process on loopback) scrapes the agent while
the netns testbed carries real kernel UDP through the reference UPF, and
what an operator reads through Prometheus's query API is the ground truth
the nodes recorded: each slice's uplink G-PDUs on N3 and its downlink on
N3's way out, with the slice's one label set; `histogram_quantile` over the
transit buckets (real time spent crossing the UPF) lands in the bucket of
the percentile the agent's API gives; and every interval Prometheus
scraped during the run moved forward, never back."""

from __future__ import annotations

import json
import math
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_server import PrometheusServer
from served import serve_in_thread

from sauron.abi import layout
from sauron.agent.interfaces import attach_interfaces
from sauron.agent.runtime import AgentRuntime, ProgramMaps
from sauron.bpf.loader import DataPlane
from sauron.bpf.measurements import MeasureSettings, apply_settings
from sauron.catalog import Catalog
from sauron.export.families import slice_labels
from sauron.export.prometheus import LE_SHIFTS
from sauron.service.app import ServiceOptions, create_app
from sauron.testbed.bed import N6_DN, UDP_ECHO_PORT, Testbed
from sauron.testbed.sessions import SessionsFile, make_sessions

pytestmark = [pytest.mark.kernel, pytest.mark.netns]

TOKEN = "the-testbed-scraper"
ROUNDS = 30


def selector(labels: dict[str, str], **more: str) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in {**labels, **more}.items()) + "}"


def api_get(url: str, route: str) -> Any:
    request = urllib.request.Request(url + route, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as r:
        return json.load(r)


def test_prometheus_during_a_testbed_run_reads_the_ground_truth(
    dataplane: DataPlane, catalog: Catalog, tmp_path: Path
) -> None:
    apply_settings(
        dataplane, MeasureSettings(transit_one_in=tuple((s.id, 1) for s in catalog.slices))
    )
    sessions = SessionsFile(sessions=make_sessions(catalog, {"embb": 2, "urllc": 2, "mmtc": 3}))
    runtime = AgentRuntime(catalog, ProgramMaps(dataplane, shortcut=False))
    labels = slice_labels(catalog)

    def attach(bed: Testbed) -> None:
        attach_interfaces(dataplane, bed.interfaces(), bed.links)

    with serve_in_thread(create_app(runtime, ServiceOptions(token=TOKEN))) as url:
        prometheus = PrometheusServer(tmp_path / "prometheus", url.removeprefix("http://"), TOKEN)
        try:
            with Testbed(catalog, sessions, tmp_path / "bed", before_nodes=attach) as bed:
                socks = [bed.ue_udp_socket(str(s.ue_ip)) for s in sessions.sessions]
                for sock in socks:
                    sock.settimeout(3)
                for i in range(ROUNDS):
                    for sock in socks:
                        sock.sendto(bytes(60 + i), (N6_DN, UDP_ECHO_PORT))
                    for sock in socks:
                        sock.recv(2048)
                    if i % 10 == 9:
                        runtime.engine.tick()  # intervals Prometheus scrapes mid-run
                for sock in socks:
                    sock.close()
                truth = bed.stop()
            runtime.engine.tick()

            gnb, upf = truth["gnb"]["slices"], truth["upf"]["slices"]
            for s in catalog.slices:
                ul = selector(labels[s.name], point="n3_ingress", direction="uplink")
                dl = selector(labels[s.name], point="n3_egress", direction="downlink")
                sent_ul, sent_dl = gnb[s.name]["ul_sent"], upf[s.name]["dl_sent"]
                assert sent_ul > 0 and sent_dl > 0
                assert prometheus.value_when(f"sauron_packets_total{ul}", sent_ul) == sent_ul
                assert prometheus.value_when(f"sauron_packets_total{dl}", sent_dl) == sent_dl
                (ul_bytes,) = prometheus.query(f"sauron_bytes_total{ul}")
                assert float(ul_bytes["value"][1]) == gnb[s.name]["ul_sent_bytes"]
                # counters never went back across the scrapes of the run
                (moved,) = prometheus.query(f"resets(sauron_packets_total{ul}[5m])")
                assert float(moved["value"][1]) == 0

            # the quantile Prometheus computes from the buckets of real
            # transit times lands in the bucket of the agent's own p99
            embb = selector(labels["embb"], direction="uplink")
            embb_id = next(s.id for s in catalog.slices if s.name == "embb")
            transit = runtime.engine.counters.latency[
                (layout.LAT_TRANSIT, embb_id, layout.DIR_UPLINK)
            ]
            stamped = sum(transit.buckets)
            prometheus.value_when(f"sauron_transit_latency_seconds_count{embb}", stamped)
            (p99,) = prometheus.query(
                f"histogram_quantile(0.99, sauron_transit_latency_seconds_bucket{embb})"
            )
            from_prometheus_s = float(p99["value"][1])
            doc = api_get(url, "/api/v1/slices/embb/histograms/transit?direction=uplink&since=0")
            assert doc["count"] == stamped > 0
            from_api_s = doc["percentiles"]["p99"]["value"] / 1e3
            bounds = [0.0] + [(1 << shift) / 1e9 for shift in LE_SHIFTS] + [math.inf]
            bucket = next(i for i in range(len(bounds) - 1) if from_api_s < bounds[i + 1])
            assert bounds[bucket] <= from_prometheus_s <= bounds[bucket + 1], (
                from_prometheus_s,
                from_api_s,
            )
        finally:
            prometheus.close()
