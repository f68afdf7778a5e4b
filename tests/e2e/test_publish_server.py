"""The publisher against a real time-series server on loopback (Debian's
victoria-metrics, InfluxDB v2 write API; or a real InfluxDB 2 named by
SAURON_TEST_INFLUXDB_URL, see tests/support/timeseries.py). KPIs come from the real
programs fed by frames; what the server holds is read back through its own
export API and compared field by field with what was sent, and with the
frames. The server is stopped during an outage and the agent is killed
with points in its spool: every interval's points arrive exactly once. The
security checks' counts per interval are the engine's, and a detection
growing over intervals is one series at the time it was first seen."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from agent_process import agent_config, start_agent
from exporting import recording_offers, run_ticks
from frames import STRAY_TEID, UE, gtpu, natted, plain, stray, ul_packet
from manual_clock import ManualClock
from timeseries import ExternalInflux, Sample, VictoriaMetrics, parse_line, server_for_tests

from sauron.abi import layout
from sauron.abi.histogram import LATENCY, percentile
from sauron.abi.kpis import SECURITY_KPIS
from sauron.agent.runtime import AgentRuntime, ProgramMaps
from sauron.agent.securing import Securing
from sauron.bpf import libbpf
from sauron.bpf.loader import DataPlane
from sauron.bpf.measurements import MeasureSettings, apply_settings
from sauron.catalog import Catalog
from sauron.export.delivery.outcome import WriteResult
from sauron.export.delivery.spool import Spool
from sauron.export.influx.points import time_ns
from sauron.export.influx.publisher import PUBLISHING, SPOOLING, Publisher
from sauron.export.influx.settings import InfluxConfig
from sauron.export.influx.writer import InfluxWriter
from sauron.kpi.quality import merge_latency
from sauron.security.detect import TEID_SCAN
from sauron.security.settings import SecurityConfig

pytestmark = [pytest.mark.kernel]

EMBB, UL_TEID = 1, 0x10007
LOST_SEQS = (5, 6, 7, 12)
SENT_SEQS = [n for n in range(100) if n not in LOST_SEQS]


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[VictoriaMetrics | ExternalInflux]:
    srv = server_for_tests(tmp_path)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def config_for(srv: VictoriaMetrics | ExternalInflux, tmp: Path, **more: object) -> InfluxConfig:
    return InfluxConfig.model_validate(
        {
            "url": srv.url,
            "org": srv.org,
            "bucket": srv.bucket,
            "token": srv.token,
            "spool_dir": tmp / "spool",
            "flush_interval_s": 0.1,
            "retry_first_s": 0.1,
            "retry_max_s": 0.5,
            **more,
        }
    )


def feed(dataplane: DataPlane, round_: int) -> None:
    """Five uplink G-PDUs of eMBB, the round's share of a run of sequence
    numbers with four missing (three and one, both in round 1), each also
    leaving on N6 so its transit time is measured."""
    for seq in SENT_SEQS[round_ * 5 : (round_ + 1) * 5]:
        packet = ul_packet(f"p{seq}".encode(), ip_id=seq)
        libbpf.test_run(
            dataplane.program_fd(layout.POINT_N3_INGRESS),
            gtpu(packet, UL_TEID, uplink=True, seq=seq),
        )
        libbpf.test_run(dataplane.program_fd(layout.POINT_N6_EGRESS), plain(natted(packet)))


def held(srv: VictoriaMetrics | ExternalInflux, since_ms: int) -> list[Sample]:
    return [s for s in srv.samples() if s.time_ms >= since_ms]


def test_points_read_back_field_by_field(
    server: VictoriaMetrics | ExternalInflux,
    dataplane: DataPlane,
    catalog: Catalog,
    tmp_path: Path,
) -> None:
    apply_settings(dataplane, MeasureSettings(transit_one_in=((EMBB, 1),)))
    clock = ManualClock(time.time() - 3600.0)
    start_ms = int(clock.t * 1000)
    publisher = Publisher(config_for(server, tmp_path), "node-a", server.token)
    sent = recording_offers(publisher)
    runtime = AgentRuntime(
        catalog, ProgramMaps(dataplane, shortcut=False), clock=clock, exporters=[publisher]
    )
    run_ticks(publisher, runtime, clock, 3, between=lambda n: feed(dataplane, n))
    assert publisher.stats.state == "stopped" and publisher.stats.points_written == len(sent)

    expected = [s for text in sent for s in parse_line(text)]
    got = held(server, start_ms)
    assert "sauron_session" not in {s.measurement for s in got}, "per-session series only if asked"
    # every numeric field of every point, exactly once, at its own time
    key = lambda s: (s.measurement, s.tags, s.field, s.time_ms)  # noqa: E731
    assert Counter(map(key, got)) == Counter(map(key, expected))
    values = {key(s): s.value for s in got}
    for s in expected:
        if s.value != s.value:  # a string field: its text is not kept
            continue
        assert values[key(s)] == pytest.approx(s.value, rel=1e-12, abs=1e-12), key(s)

    # and the numbers are the frames': 5 G-PDUs per interval entered eMBB uplink
    def field_of(measurement: str, field: str, **tags: str) -> list[float]:
        return [
            s.value
            for s in sorted(got, key=lambda s: s.time_ms)
            if s.measurement == measurement
            and s.field == field
            and all(dict(s.tags).get(k) == v for k, v in tags.items())
        ]

    ul = {"slice": "embb", "direction": "uplink", "node": "node-a", "sst": "1", "sd": "000001"}
    assert field_of("sauron_traffic", "packets_in", **ul) == [5, 5, 5]
    assert field_of("sauron_latency", "samples", metric="transit", **ul) == [5, 5, 5]
    # the sequence gaps 5-7 and 12 fall in the second interval
    assert field_of("sauron_loss", "lost", source="sequence", **ul) == [0, 4, 0]
    # the histogram buckets read back, summed over the intervals by `le`, are
    # the engine's own merged histogram: same buckets, same percentiles
    merged = [0] * LATENCY.buckets
    for s in got:
        if s.measurement == "sauron_histogram" and dict(s.tags).get("metric") == "transit":
            upper_ns = round(float(dict(s.tags)["le"]) * 1e6)
            merged[LATENCY.bucket(upper_ns - 1)] += int(s.value)
    assert sum(merged) == 15
    own = merge_latency(
        [snap.slices["embb"].uplink.transit for snap in runtime.engine.history.between()]
    )
    assert merged == own.histogram().buckets
    for q in (0.5, 0.99):
        ours, theirs = (
            percentile(LATENCY, merged, q),
            percentile(LATENCY, own.histogram().buckets, q),
        )
        assert ours is not None and theirs is not None and ours.value == theirs.value


def test_top_sessions_are_series_only_when_asked(
    server: VictoriaMetrics | ExternalInflux,
    dataplane: DataPlane,
    catalog: Catalog,
    tmp_path: Path,
) -> None:
    """Three eMBB tunnels carry 3, 2 and 1 G-PDUs each interval; with
    `top_sessions: 2` the two busiest are written, per interval, with the
    volumes the frames had."""
    frames = {
        teid: gtpu(ul_packet(b"x" * (100 * n)), teid, uplink=True)
        for n, teid in enumerate((0x10001, 0x10002, 0x10003), start=1)
    }
    counts = {0x10001: 3, 0x10002: 2, 0x10003: 1}

    def send(_: int) -> None:
        for teid, n in counts.items():
            for _ in range(n):
                libbpf.test_run(dataplane.program_fd(layout.POINT_N3_INGRESS), frames[teid])

    clock = ManualClock(time.time() - 1800.0)
    start_ms = int(clock.t * 1000)
    publisher = Publisher(config_for(server, tmp_path, top_sessions=2), "node-a", server.token)
    runtime = AgentRuntime(
        catalog, ProgramMaps(dataplane, shortcut=False), clock=clock, exporters=[publisher]
    )
    times = run_ticks(publisher, runtime, clock, 3, between=send)

    sessions = [s for s in held(server, start_ms) if s.measurement == "sauron_session"]
    by_interval: dict[int, dict[str, dict[str, float]]] = {}
    for s in sessions:
        tags = dict(s.tags)
        assert (tags["slice"], tags["ue"]) == ("embb", UE)
        by_interval.setdefault(s.time_ms, {}).setdefault(tags["teid"], {})[s.field] = s.value
    assert sorted(by_interval) == [time_ns(t) // 1_000_000 for t in times]
    for interval in by_interval.values():
        assert interval == {
            f"0x{teid:08x}": {
                "uplink_packets": counts[teid],
                "downlink_packets": 0,
                "uplink_bytes": counts[teid] * len(frames[teid]),
                "downlink_bytes": 0,
                "qfi": 9,
            }
            for teid in (0x10001, 0x10002)
        }


def test_security_counts_and_a_growing_detection_read_back(
    server: VictoriaMetrics | ExternalInflux,
    dataplane: DataPlane,
    catalog: Catalog,
    tmp_path: Path,
) -> None:
    """The agent's security checks as `sauron run` wires them (a scan
    threshold of 3, quiet after 2 s): unknown TEIDs from the gNB, three
    then two more an interval later (one scan, in URLLC, growing), and
    spoofed eMBB frames; every interval's count per slice and kind stored is
    the engine's, and the scan is one series at its first-seen time whose
    last write is how it ended."""
    clock = ManualClock(time.time() - 5400.0)
    start_ms = int(clock.t * 1000)
    publisher = Publisher(config_for(server, tmp_path), "node-s", server.token)
    sent = recording_offers(publisher)
    runtime = AgentRuntime(
        catalog, ProgramMaps(dataplane, shortcut=False), clock=clock, exporters=[publisher]
    )
    security = Securing(SecurityConfig(scan_threshold=3, quiet_s=2.0), dataplane, 1.0, wall=clock)
    runtime.secure(security)
    n3 = dataplane.program_fd(layout.POINT_N3_INGRESS)

    def between(n: int) -> None:
        for teid in {0: range(0, 3), 1: range(3, 5)}.get(n, range(0)):
            libbpf.test_run(n3, stray(teid=STRAY_TEID + teid))
        for _ in range(n % 3):
            libbpf.test_run(n3, stray("8.8.8.8", UL_TEID))

    run_ticks(publisher, runtime, clock, 6, between=between)
    assert publisher.stats.points_written == len(sent) and not publisher.stats.points_dropped
    got = held(server, start_ms)

    # every interval's count per slice and kind, as the engine made it
    stored = {
        (dict(s.tags)["slice"], s.field, s.time_ms): s.value
        for s in got
        if s.measurement == "sauron_security"
    }
    snaps = runtime.engine.history.between()
    assert len(snaps) == 6
    assert stored == {
        (kpis.name, kind.name, time_ns(snap.time) // 1_000_000): kpis.security[kind.name]
        for snap in snaps
        for kpis in snap.slices.values()
        if kpis.security is not None
        for kind in SECURITY_KPIS
    }
    assert sum(v for (_, kind, _), v in stored.items() if kind == "unknown_teid") == 5
    assert sum(v for (_, kind, _), v in stored.items() if kind == "ue_source_spoofed") == 6

    # the scan: opened, grown, ended; one series per field at its first-seen time
    (event,) = security.events()
    assert (event.kind, event.count, event.distinct, event.ongoing) == (TEID_SCAN, 5, 5, False)
    updates = [e for snap in snaps for e in snap.security_events]
    assert [(e.id, e.count, e.ongoing) for e in updates] == [
        (event.id, 3, True),
        (event.id, 5, True),
        (event.id, 5, False),
    ]
    points = [s for s in got if s.measurement == "sauron_security_event"]
    tags = {
        ("event", str(event.id)),
        ("kind", TEID_SCAN),
        ("node", "node-s"),
        ("slice", "urllc"),
        ("sst", "2"),
        ("sd", "000001"),
    }
    assert {(set(s.tags) == tags, s.time_ms) for s in points} == {
        (True, time_ns(event.first_seen) // 1_000_000)
    }
    # victoria-metrics keeps every write at the time, InfluxDB the last one:
    # each value stored is one written, and the last write's are stored
    writes = [
        {s.field: s.value for s in parse_line(text) if s.value == s.value}  # strings: NaN
        for text in sent
        if text.startswith("sauron_security_event,")
    ]
    assert len(writes) == 3
    assert writes[-1] == {
        "count": 5,
        "distinct": 5,
        "last_seen": pytest.approx(event.last_seen, rel=1e-12),
        "ongoing": 0.0,
    }
    stored_values: dict[str, list[float]] = {}
    for s in points:
        if s.field in writes[-1]:  # not the TEIDs' text
            stored_values.setdefault(s.field, []).append(s.value)
    assert set(stored_values) == set(writes[-1])
    for field, values in stored_values.items():
        for value in values:
            assert any(value == pytest.approx(w[field], rel=1e-12) for w in writes), field
        assert any(writes[-1][field] == pytest.approx(v, rel=1e-12) for v in values), field


@pytest.mark.skipif(
    bool(os.environ.get("SAURON_TEST_INFLUXDB_URL")),
    reason="stops the server: only with the local victoria-metrics",
)
def test_outage_every_interval_arrives_exactly_once(
    server: VictoriaMetrics, dataplane: DataPlane, catalog: Catalog, tmp_path: Path
) -> None:
    clock = ManualClock(time.time() - 7200.0)
    start_ms = int(clock.t * 1000)
    publisher = Publisher(config_for(server, tmp_path), "node-b", server.token)
    states: list[str] = []

    def between(n: int) -> None:
        if n % 3 == 0:
            feed(dataplane, n // 3)
        states.append(publisher.stats.state)
        if n == 3:
            server.stop()  # down for ticks 3..10
        if n == 11:
            assert publisher.spool.points > 0
            server.start()

    runtime = AgentRuntime(
        catalog, ProgramMaps(dataplane, shortcut=False), clock=clock, exporters=[publisher]
    )
    times = run_ticks(publisher, runtime, clock, 15, between=between)
    assert SPOOLING in states and states[-1] == PUBLISHING
    assert publisher.stats.points_replayed > 0 and publisher.spool.points == 0
    assert not publisher.stats.points_dropped
    got = held(server, start_ms)
    stamps = sorted({time_ns(t) // 1_000_000 for t in times})  # the server keeps ms
    assert len(stamps) == 15
    # each slice's traffic series has one sample per interval: no gap, no double
    per_series = Counter(
        (s.tags, s.field, s.time_ms) for s in got if s.measurement == "sauron_traffic"
    )
    assert set(per_series.values()) == {1}
    for tags in {t for t, f, _ in per_series if f == "packets_in"}:
        seen = sorted(ms for t, f, ms in per_series if t == tags and f == "packets_in")
        assert seen == stamps, tags
    ul = (
        ("direction", "uplink"),
        ("node", "node-b"),
        ("sd", "000001"),
        ("slice", "embb"),
        ("sst", "1"),
    )
    packets = sum(
        s.value
        for s in got
        if s.measurement == "sauron_traffic" and s.tags == ul and s.field == "packets_in"
    )
    assert packets == 5 * 5  # fed before ticks 0, 3, 6, 9, 12


def _agent_config(tmp: Path, ns: str, url: str) -> Path:
    influx = {
        "url": url,
        "org": "sauron-test",
        "bucket": "sauron-test",
        "spool_dir": str(tmp / "spool"),
        "flush_interval_s": 0.2,
        "retry_first_s": 0.2,
        "retry_max_s": 0.5,
    }
    return agent_config(tmp / "agent.yaml", ns, node="node-k", interval_s=0.3, influx=influx)


def _links(ns: str) -> None:
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    subprocess.run(
        ["ip", "-n", ns, "link", "add", "n3", "type", "veth", "peer", "name", "n6"], check=True
    )
    for link in ("n3", "n6"):
        subprocess.run(["ip", "-n", ns, "link", "set", link, "up"], check=True)


@pytest.mark.netns
@pytest.mark.skipif(
    bool(os.environ.get("SAURON_TEST_INFLUXDB_URL")),
    reason="needs a server it can keep away: only with the local victoria-metrics",
)
def test_killed_agent_replays_its_spool_after_restart(tmp_path: Path) -> None:
    srv = VictoriaMetrics(tmp_path / "vmdata")  # not started: the agent can only spool
    ns = f"sauron-pubk-{os.getpid()}"
    config = _agent_config(tmp_path, ns, srv.url)
    spool_dir = tmp_path / "spool"
    try:
        _links(ns)
        proc, _ = start_agent(config)
        deadline = time.monotonic() + 30
        while len(list(spool_dir.glob("*.lp"))) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        spooled = [
            text for f in sorted(spool_dir.glob("*.lp")) for text in f.read_text().splitlines()
        ]
        assert len(spooled) > 0
        expected = Counter(
            (s.measurement, s.tags, s.field, s.time_ms)
            for text in spooled
            for s in parse_line(text)
        )

        srv.start()
        _links(ns)  # a fresh namespace: the killed agent could not detach
        proc, _ = start_agent(config)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                left = list(spool_dir.glob("*.lp"))
                if not left:
                    break
                time.sleep(0.2)
            assert not list(spool_dir.glob("*.lp")), "the spool was not replayed"
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        got = Counter((s.measurement, s.tags, s.field, s.time_ms) for s in srv.samples())
        for key, n in expected.items():
            assert got[key] == n, key  # arrived, and once
        Spool(spool_dir, 1 << 20).close()  # the stopped agent let go of it
    finally:
        srv.stop()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_doctor_influx_passes_against_the_server(
    server: VictoriaMetrics | ExternalInflux, tmp_path: Path
) -> None:
    import json
    import sys

    from agent_process import REPO

    env = {
        **os.environ,
        "SAURON_INFLUX_URL": server.url,
        "SAURON_INFLUX_ORG": server.org,
        "SAURON_INFLUX_BUCKET": server.bucket,
        "SAURON_INFLUX_TOKEN": server.token,
    }
    config = tmp_path / "agent.yaml"
    config.write_text(
        yaml.safe_dump(
            {"interfaces": [{"name": "n3", "role": "n3"}], "influx": {"spool_dir": "spool"}}
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "sauron", "doctor", "--influx", "--json", "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert [c["name"] for c in result["checks"]] == [
        "influx_settings",
        "influx_reachable",
        "influx_write",
        "influx_spool",
    ]
    assert all(c["status"] == "pass" for c in result["checks"])
    assert str(tmp_path / "spool") in result["checks"][3]["reason"]
    assert server.token not in done.stdout


class FailingFirst:
    """The real writer behind `fails` writes that raise the way
    influxdb-client does on settings it refuses (a ValueError, not one of
    the errors a connection meets)."""

    def __init__(self, real: InfluxWriter, fails: int) -> None:
        self.real, self.fails = real, fails

    async def write(self, lines: list[str]) -> WriteResult:
        if self.fails > 0:
            self.fails -= 1
            raise ValueError("Cannot combine AUTHORIZATION header with credentials encoded in URL")
        return await self.real.write(lines)

    async def close(self) -> None:
        await self.real.close()


def test_the_clients_own_refusal_is_a_retry_with_its_cause(
    server: VictoriaMetrics | ExternalInflux,
    dataplane: DataPlane,
    catalog: Catalog,
    tmp_path: Path,
) -> None:
    """The real writer, its InfluxDB client raising what it raises on
    settings it refuses (a ValueError) for the first writes: each is a
    retry, the cause shown in last_error while it lasts, the batches
    spooled, and every point reaches the server once."""
    clock = ManualClock(time.time() - 3600.0)
    start_ms = int(clock.t * 1000)
    config = config_for(server, tmp_path)
    refusals = [3]

    def refusing_writer() -> InfluxWriter:
        writer = InfluxWriter(config, server.token)
        real = writer._api.write

        async def write(*args: Any, **kwargs: Any) -> Any:
            if refusals[0] > 0:
                refusals[0] -= 1
                raise ValueError("Cannot combine AUTHORIZATION header with credentials in URL")
            return await real(*args, **kwargs)

        writer._api.write = write  # type: ignore[method-assign]
        return writer

    publisher = Publisher(config, "node-v", server.token, writer_factory=refusing_writer)
    sent = recording_offers(publisher)
    seen: list[tuple[str, str]] = []

    def between(n: int) -> None:
        seen.append((publisher.stats.state, publisher.stats.last_error))
        feed(dataplane, n % 4)

    runtime = AgentRuntime(
        catalog, ProgramMaps(dataplane, shortcut=False), clock=clock, exporters=[publisher]
    )
    run_ticks(publisher, runtime, clock, 6, between=between)
    s = publisher.stats
    assert refusals == [0]
    assert any(state == "spooling" and "ValueError" in error for state, error in seen), seen
    assert s.points_dropped == {} and publisher.spool.points == 0
    assert s.points_spooled > 0 and s.points_written == s.points_offered == len(sent)
    key = lambda x: (x.measurement, x.tags, x.field, x.time_ms)  # noqa: E731
    expected = Counter(key(x) for text in sent for x in parse_line(text))
    assert Counter(map(key, held(server, start_ms))) == expected


def test_a_writer_that_raises_loses_no_batch(
    server: VictoriaMetrics | ExternalInflux,
    dataplane: DataPlane,
    catalog: Catalog,
    tmp_path: Path,
) -> None:
    """Every batch taken off the queue is written, spooled or counted
    dropped, whatever the writer raises: the batches of the failed rounds
    wait in the spool and reach the server once it takes them."""
    clock = ManualClock(time.time() - 3600.0)
    start_ms = int(clock.t * 1000)
    config = config_for(server, tmp_path)
    publisher = Publisher(
        config,
        "node-r",
        server.token,
        writer_factory=lambda: FailingFirst(InfluxWriter(config, server.token), fails=3),
    )
    sent = recording_offers(publisher)
    runtime = AgentRuntime(
        catalog, ProgramMaps(dataplane, shortcut=False), clock=clock, exporters=[publisher]
    )
    run_ticks(publisher, runtime, clock, 6, between=lambda n: feed(dataplane, n % 4))
    s = publisher.stats
    assert s.points_dropped == {} and publisher.spool.points == 0
    assert s.points_spooled > 0 and s.points_written == s.points_offered == len(sent)
    key = lambda x: (x.measurement, x.tags, x.field, x.time_ms)  # noqa: E731
    expected = Counter(key(x) for text in sent for x in parse_line(text))
    assert Counter(map(key, held(server, start_ms))) == expected
