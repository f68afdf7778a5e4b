"""Diagnoses written by the InfluxDB publisher (`sauron_diagnosis`) to a real
time-series server on loopback (Debian's victoria-metrics, or the InfluxDB 2
of SAURON_TEST_INFLUXDB_URL: tests/support/timeseries.py) and read back
through its own API. The agent's diagnosis loop runs over the real programs
(G-PDUs through BPF_PROG_TEST_RUN, eMBB's transit p99 target set below
what any packet takes) and the real diagnosis probe watching a "UPF"
worker that shares its CPU with a named hog; the publisher is wired to it
as `sauron run` wires it. The server is away for one degraded interval.

What the server holds is the loop's own history, exactly: each diagnosis
once, at the end of the interval it explains, each factor at its rank with
its share and every number of its evidence; the texts (summary, figure,
method, the hog's name), which victoria-metrics does not keep, are held to
the lines the publisher wrote."""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from cpu_contention import CPU
from cpu_contention import hog as start_hog
from cpu_contention import worker as worker_on
from degraded_slice import send, strict_catalog
from exporting import recording_offers, run_ticks
from manual_clock import ManualClock
from timeseries import (
    ExternalInflux,
    Sample,
    VictoriaMetrics,
    parse_line,
    server_for_tests,
    string_fields,
)

from sauron.agent.diagnosing import Diagnosing
from sauron.agent.run import publish_diagnoses
from sauron.agent.runtime import AgentRuntime, ProgramMaps
from sauron.bpf.loader import DataPlane
from sauron.bpf.measurements import MeasureSettings, apply_settings
from sauron.bpf.rules import program_catalog
from sauron.diagnosis.explain import Diagnosed
from sauron.diagnosis.host_counters import read_host
from sauron.diagnosis.probe import DiagnosisProbe, probe_in
from sauron.export.influx.points import DIAGNOSIS, time_ns
from sauron.export.influx.publisher import Publisher
from sauron.export.influx.settings import InfluxConfig

pytestmark = [pytest.mark.kernel]

TARGET = "transit_latency_ms.p99.uplink"
EMBB_TAGS = {"node": "node-d", "slice": "embb", "sst": "1", "sd": "000001", "target": TARGET}
#: ticks 0-1 healthy; from tick 2 every packet misses the target
HEALTHY, TICKS, AWAY = 2, 6, 3


@pytest.fixture(scope="module")
def probe() -> Iterator[DiagnosisProbe]:
    with probe_in(Path("/sys/fs/bpf") / f"sauron-test-diag-publish-{os.getpid()}") as p:
        yield p


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[VictoriaMetrics | ExternalInflux]:
    srv = server_for_tests(tmp_path)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def flattened(evidence: dict[str, object], prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in evidence.items():
        if isinstance(value, dict):
            out.update(flattened(value, f"{prefix}{key}_"))
        else:
            out[f"{prefix}{key}"] = value
    return out


def expected_fields(diagnosed: Diagnosed) -> dict[tuple[tuple[str, str], ...], dict[str, object]]:
    """The diagnosis's points as the loop holds it: tags -> {field: value}."""
    d = diagnosed.diagnosis
    failing = {"limit": d.failing.limit, "value": d.failing.value}
    head: dict[str, object] = {"summary": d.summary, **failing, "factors": len(d.factors)}
    if d.unmeasured:
        head["unmeasured"] = "; ".join(d.unmeasured)
    assert d.neighbour is None  # eMBB alone carries traffic
    out = {tuple(sorted(EMBB_TAGS.items())): head}
    for rank, f in enumerate(d.factors, start=1):
        tags = {**EMBB_TAGS, "factor": f.name, "rank": str(rank)}
        out[tuple(sorted(tags.items()))] = {
            "share": f.share,
            "figure": f.figure,
            "method": f.method,
            **failing,
            **flattened(f.evidence),
        }
    return out


def test_each_diagnosis_is_written_once_with_its_factors_and_evidence(
    server: VictoriaMetrics | ExternalInflux,
    dataplane: DataPlane,
    probe: DiagnosisProbe,
    tmp_path: Path,
) -> None:
    catalog = strict_catalog()
    program_catalog(dataplane, catalog)
    apply_settings(dataplane, MeasureSettings(transit_one_in=((1, 1),)))
    clock = ManualClock(time.time() - 900.0)
    start_ms = int(clock.t * 1000)
    config = InfluxConfig.model_validate(
        {
            "url": server.url,
            "org": server.org,
            "bucket": server.bucket,
            "token": server.token,
            "spool_dir": tmp_path / "spool",
            "flush_interval_s": 0.1,
            "retry_first_s": 0.1,
            "retry_max_s": 0.3,
        }
    )
    publisher = Publisher(config, "node-d", server.token)
    sent = recording_offers(publisher)
    runtime = AgentRuntime(
        catalog, ProgramMaps(dataplane, shortcut=False), clock=clock, exporters=[publisher]
    )
    hog_name = f"hog-{uuid.uuid4().hex[:8]}"
    worker = worker_on()
    hog = start_hog(hog_name)
    loop = Diagnosing(
        runtime.engine.sla,
        probe,
        lambda: {worker.pid: "upf-worker"},
        lambda tgids: read_host(tgids, {}),
    )
    runtime.listen("diagnosis", loop.on_snapshot, first=True)
    publish_diagnoses(publisher, loop)
    spooled_at_away: list[int] = []

    def between(n: int) -> None:
        if not server.external and n == AWAY:
            server.stop()
        if not server.external and n == AWAY + 1:
            spooled_at_away.append(publisher.spool.points)
            server.start()
        if n >= HEALTHY:
            send(dataplane, 50, 50 * n)  # every transit time is above 0.1 us
            time.sleep(0.4)  # the worker waits behind the hog meanwhile

    try:
        time.sleep(0.3)
        times = run_ticks(publisher, runtime, clock, TICKS, between=between)
    finally:
        probe.detach()  # the module's probe is closed by its fixture
        probe.watch({})
        for p in (hog, worker):
            p.kill()
            p.wait()

    history = loop.history("embb")
    assert [d.time for d in history] == times[HEALTHY:], "one diagnosis per degraded interval"
    assert not history[0].diagnosis.factors, "the first interval is diagnosed without the probe"
    assert all(d.diagnosis.factors for d in history[1:])
    wait = next(f for f in history[-1].diagnosis.factors if f.name == "run_queue_wait")
    held = wait.evidence["held_by"]
    assert isinstance(held, dict) and (held["comm"], held["pid"], held["cpu"]) == (
        hog_name,
        hog.pid,
        CPU,
    )
    if not server.external:
        assert spooled_at_away and spooled_at_away[0] > 0, "the interval away was spooled"
    assert publisher.spool.points == 0 and not publisher.stats.points_dropped

    expected: dict[tuple[tuple[tuple[str, str], ...], int], dict[str, object]] = {}
    for diagnosed in history:
        ms = time_ns(diagnosed.time) // 1_000_000
        for tags, fields in expected_fields(diagnosed).items():
            expected[(tags, ms)] = fields

    got: list[Sample] = [
        s
        for s in server.samples()
        if s.measurement == DIAGNOSIS and s.time_ms >= start_ms and ("node", "node-d") in s.tags
    ]
    # every field of every point, once: strings too where the server keeps them
    keep_strings = not server.external
    want = Counter(
        (tags, field, ms)
        for (tags, ms), fields in expected.items()
        for field, value in fields.items()
        if keep_strings or not isinstance(value, str)
    )
    assert Counter((s.tags, s.field, s.time_ms) for s in got) == want
    for s in got:
        value = expected[(s.tags, s.time_ms)][s.field]
        if not isinstance(value, str):
            assert s.value == pytest.approx(value, rel=1e-12, abs=1e-12), (s.tags, s.field)

    # the texts, as written
    written = [text for text in sent if text.startswith(DIAGNOSIS + ",")]
    assert len(written) == len(expected)
    for text in written:
        (first, *_) = parse_line(text)
        fields = expected[(first.tags, first.time_ms)]
        texts = {k: v for k, v in fields.items() if isinstance(v, str)}
        assert string_fields(text) == texts
