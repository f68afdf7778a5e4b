"""The remote-write exporter against Debian's real victoria-metrics on
loopback (its /api/v1/write takes Prometheus remote write 1.0). KPIs come
from the real programs fed by frames; what victoria-metrics holds is read
back series by series through its raw export (every sample with its
timestamp, duplicates included) and held to what /metrics renders for the
same interval: the same series, labels identical, the same values. The
server is stopped during an outage and the exporter killed between two
flushes: every interval arrives exactly once, at its own time."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_process import agent_config, start_agent, stop_agent, veth_namespace
from exporting import recording_offers, run_ticks
from frames import gtpu, natted, plain, stray, ul_packet
from manual_clock import ManualClock
from timeseries import VictoriaMetrics

from sauron.abi import layout
from sauron.agent.runtime import AgentRuntime, ProgramMaps
from sauron.bpf import libbpf
from sauron.bpf.loader import DataPlane
from sauron.bpf.measurements import MeasureSettings, apply_settings
from sauron.bpf.security import set_checks
from sauron.catalog import Catalog
from sauron.export.delivery.lossless import PUBLISHING, SPOOLING
from sauron.export.prometheus import render_engine
from sauron.export.remote_write.exporter import RemoteWriteExporter, time_ms
from sauron.export.remote_write.samples import parse, stamped
from sauron.export.remote_write.settings import RemoteWriteConfig

pytestmark = [pytest.mark.kernel]

EMBB, UL_TEID = 1, 0x10007
#: every family /metrics renders from the engine
ENGINE_FAMILIES = '{__name__=~"(sauron|process)_.+"}'

Series = tuple[tuple[str, str], ...]


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    srv = VictoriaMetrics(tmp_path / "vmdata")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def exporter_for(srv: VictoriaMetrics, tmp: Path) -> RemoteWriteExporter:
    config = RemoteWriteConfig(
        url=f"{srv.url}/api/v1/write",
        spool_dir=tmp / "spool-remote-write",
        flush_interval_s=0.1,
        retry_first_s=0.1,
        retry_max_s=0.5,
    )
    return RemoteWriteExporter(config, "node-a")


def feed(dataplane: DataPlane, n: int) -> None:
    """n + 2 uplink G-PDUs of eMBB, each also leaving on N6 so its transit
    time lands in the histogram."""
    for seq in range(n + 2):
        packet = ul_packet(f"p{n}-{seq}".encode(), ip_id=seq)
        libbpf.test_run(
            dataplane.program_fd(layout.POINT_N3_INGRESS), gtpu(packet, UL_TEID, uplink=True)
        )
        libbpf.test_run(dataplane.program_fd(layout.POINT_N6_EGRESS), plain(natted(packet)))


def as_stored(lines: list[str]) -> dict[tuple[Series, int], float]:
    """Stamped lines as a Prometheus store keeps them: with the node's
    `instance` and the `job` a scrape would add, and a label with an empty
    value is no label (as when /metrics is scraped)."""
    out: dict[tuple[Series, int], float] = {}
    for text in lines:
        s = parse(text)
        labels = {"instance": "node-a", "job": "sauron", **dict(s.labels)}
        key = (tuple(sorted((k, v) for k, v in labels.items() if v)), s.time_ms)
        assert key not in out, f"the same series twice in one interval: {text}"
        out[key] = s.value
    return out


def held(srv: VictoriaMetrics) -> Counter[tuple[Series, int]]:
    """Every sample victoria-metrics holds, counted by series and time."""
    return Counter(
        (labels, ms) for labels, points in srv.series(ENGINE_FAMILIES).items() for ms, _ in points
    )


def test_every_series_reads_back_as_metrics_renders_it(
    server: VictoriaMetrics, dataplane: DataPlane, catalog: Catalog, tmp_path: Path
) -> None:
    apply_settings(dataplane, MeasureSettings(transit_one_in=((EMBB, 1),)))
    set_checks(dataplane, True)
    clock = ManualClock(time.time() - 3600.0)
    exporter = exporter_for(server, tmp_path)
    sent = recording_offers(exporter)
    runtime = AgentRuntime(
        catalog, ProgramMaps(dataplane, shortcut=False), clock=clock, exporters=[exporter]
    )
    #: what /metrics renders after each tick, by the tick's time
    rendered: dict[int, str] = {}

    def between(n: int) -> None:
        latest = runtime.engine.history.latest()
        if latest is not None:
            rendered[time_ms(latest.time)] = render_engine(runtime.engine)
        feed(dataplane, n)
        for _ in range(n + 1):  # of an unknown TEID, from a UE of URLLC
            libbpf.test_run(dataplane.program_fd(layout.POINT_N3_INGRESS), stray())

    times = run_ticks(exporter, runtime, clock, 4, between=between)
    latest = runtime.engine.history.latest()
    assert latest is not None
    rendered[time_ms(latest.time)] = render_engine(runtime.engine)
    assert sorted(rendered) == [time_ms(t) for t in times]
    assert exporter.stats.points_written == len(sent) and not exporter.stats.points_dropped

    stored = server.series(ENGINE_FAMILIES)
    got = {(labels, ms): v for labels, points in stored.items() for ms, v in points}
    assert sum(len(points) for points in stored.values()) == len(got), "a sample twice"
    # what was sent is what is held, sample for sample, value for value
    assert got == as_stored(sent)
    # and what is held is /metrics' rendering of the same interval: the same
    # series with the same labels; the same values, but for the process's own
    # families, which read /proc when rendered
    for ms, text in rendered.items():
        metrics = as_stored(stamped(text, ms))
        of_interval = {k: v for k, v in got.items() if k[1] == ms}
        assert set(of_interval) == set(metrics), ms
        for key, value in metrics.items():
            if not dict(key[0])["__name__"].startswith("process_"):
                assert of_interval[key] == value, key

    def value(ms: int, name: str, **labels: str) -> float:
        (v,) = [
            v
            for (series, at), v in got.items()
            if at == ms
            and dict(series).get("__name__") == name
            and labels.items() <= dict(series).items()
        ]
        return v

    last = time_ms(times[-1])
    ul = {"slice": "embb", "direction": "uplink"}
    # 2 + 3 + 4 + 5 G-PDUs in, each one timed: the counters and the histogram agree
    assert value(last, "sauron_packets_total", point="n3_ingress", **ul) == 14
    assert value(last, "sauron_transit_latency_seconds_count", **ul) == 14
    assert value(last, "sauron_transit_latency_seconds_bucket", le="+Inf", **ul) == 14
    assert value(time_ms(times[0]), "sauron_transit_latency_seconds_count", **ul) == 2
    # 1 + 2 + 3 + 4 frames of an unknown TEID: the security counter is the data path's
    urllc = catalog.get("urllc")
    assert urllc is not None
    counted = runtime.engine.counters.security_count(urllc.id, layout.SEC_UNKNOWN_TEID)
    security = {"slice": "urllc", "kind": "unknown_teid"}
    assert value(last, "sauron_security_events_total", **security) == counted == 10


def test_outage_every_interval_arrives_exactly_once(
    server: VictoriaMetrics, dataplane: DataPlane, catalog: Catalog, tmp_path: Path
) -> None:
    clock = ManualClock(time.time() - 7200.0)
    exporter = exporter_for(server, tmp_path)
    sent = recording_offers(exporter)
    states: list[str] = []

    def between(n: int) -> None:
        feed(dataplane, 0)
        states.append(exporter.stats.state)
        if n == 2:
            deadline = time.monotonic() + 10  # the first intervals written, on a busy machine too
            while not exporter.stats.points_written and time.monotonic() < deadline:
                time.sleep(0.05)
            states.append(exporter.stats.state)
            server.stop()  # down for ticks 2..7
        if n == 8:
            assert exporter.spool.points > 0
            server.start()

    runtime = AgentRuntime(
        catalog, ProgramMaps(dataplane, shortcut=False), clock=clock, exporters=[exporter]
    )
    times = run_ticks(exporter, runtime, clock, 11, between=between)
    assert PUBLISHING in states and SPOOLING in states
    assert states.index(PUBLISHING) < states.index(SPOOLING)
    assert exporter.stats.points_replayed > 0 and exporter.spool.points == 0
    assert not exporter.stats.points_dropped
    got = held(server)
    assert set(got.values()) == {1}, "a sample arrived twice"
    assert got == Counter(as_stored(sent).keys())
    # a series of the first interval has one sample at each interval's time
    stamps = [time_ms(t) for t in times]
    packets = [
        labels
        for labels in server.series(ENGINE_FAMILIES)
        if dict(labels)["__name__"] == "sauron_packets_total"
    ]
    assert packets
    for labels in packets:
        assert sorted(ms for series, ms in got if series == labels) == stamps


KILLED_BEFORE_FLUSH = """
import asyncio, os, signal, sys
from pathlib import Path
from sauron.export.remote_write.exporter import RemoteWriteExporter
from sauron.export.remote_write.settings import RemoteWriteConfig

async def main():
    cfg = RemoteWriteConfig(url=sys.argv[2], spool_dir=Path(sys.argv[1]), flush_interval_s=300)
    exporter = RemoteWriteExporter(cfg, 'node-a')
    await exporter.start()
    for line in sys.stdin.read().split("\\n")[:-1]:
        exporter.offer([line])
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


def test_samples_queued_when_killed_reach_the_server_once(
    server: VictoriaMetrics, tmp_path: Path
) -> None:
    """Four intervals queued, the exporter killed before its first flush:
    the next one writes every sample from the journal, once."""
    base = time_ms(time.time() - 600)
    lines = [
        f'sauron_packets_total{{slice="s{i}",direction="uplink"}} {n * 10 + i} {base + n * 1000}'
        for n in range(4)
        for i in range(3)
    ]
    spool = tmp_path / "spool-remote-write"
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_BEFORE_FLUSH, str(spool), f"{server.url}/api/v1/write"],
        input="".join(f"{line}\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    exporter = exporter_for(server, tmp_path)

    async def go() -> None:
        await exporter.start()
        deadline = time.monotonic() + 10
        while exporter.stats.points_written < len(lines) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await exporter.stop()

    asyncio.run(go())
    assert exporter.stats.points_replayed == len(lines)
    assert held(server) == Counter(as_stored(lines).keys())
    stored = server.series(ENGINE_FAMILIES)
    assert {(labels, ms): v for labels, points in stored.items() for ms, v in points} == as_stored(
        lines
    )


@pytest.mark.netns
def test_the_agent_remote_writes_beside_the_publisher(
    server: VictoriaMetrics, tmp_path: Path
) -> None:
    """`sauron run` with the publisher in its file and the remote write from
    the environment, both to victoria-metrics: each has its own entry in
    /readyz and its own families in /metrics, and the receiver holds the
    series /metrics shows, as of the node."""
    ns = f"sauron-rw-{os.getpid()}"
    influx = {"url": server.url, "org": "o", "bucket": "b", "spool_dir": str(tmp_path / "spool")}
    remote_write = {"spool_dir": str(tmp_path / "spool" / "remote-write")}  # no url: not on
    config = agent_config(tmp_path / "agent.yaml", ns, influx=influx, remote_write=remote_write)
    environment = {**os.environ, "SAURON_REMOTE_WRITE_URL": f"{server.url}/api/v1/write"}
    with veth_namespace(ns):
        proc, base = start_agent(config, environment=environment)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"{base}/readyz", timeout=5) as r:
                        ready = json.load(r)
                except urllib.error.HTTPError as waiting:  # 503 before the first interval
                    ready = json.load(waiting)
                if ready["remote_write"]["points_written"] and ready["publisher"]["points_written"]:
                    break
                time.sleep(0.2)
            assert ready["remote_write"]["state"] == "publishing", ready
            assert ready["remote_write"]["url"] == f"{server.url}/api/v1/write"
            assert ready["publisher"]["state"] == "publishing", ready
            with urllib.request.urlopen(f"{base}/metrics", timeout=5) as r:
                metrics = r.read().decode()
        finally:
            stop_agent(proc)
    assert 'sauron_remote_write_state{state="publishing"} 1' in metrics
    assert 'sauron_publisher_state{state="publishing"} 1' in metrics
    shown = {
        tuple((k, v) for k, v in parse(text).labels if v)
        for text in stamped(metrics, 0)
        if text.startswith("sauron_packets_total{")
    }
    held_series = server.series('sauron_packets_total{instance="node-test",job="sauron"}')
    assert (
        len(shown) > 10
        and {
            tuple((k, v) for k, v in labels if k not in ("instance", "job"))
            for labels in held_series
        }
        == shown
    )
