"""A degraded slice diagnosed through the agent's own loop and read as an
operator reads it: the runtime over the real programs (G-PDUs through
BPF_PROG_TEST_RUN at N3 ingress and N6 egress, eMBB's transit p99 target
set below what any packet takes), the real diagnosis probe watching a
"UPF" process that shares its CPU with a named hog. Healthy, nothing is
attached; the interval the target first fails attaches the probe; the next
one is diagnosed, and `GET /api/v1/slices/embb/diagnosis` and `sauron
diagnose embb` name the hog that held the CPU. What makes the figure fail
is set by the test (a target no packet can meet); the cause injected into a
real UPF is the testbed's part of the issue, not this test's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cpu_contention import CPU
from cpu_contention import hog as start_hog
from cpu_contention import worker as worker_on
from frames import gtpu, plain, ul_packet
from manual_clock import ManualClock
from served import serve_in_thread

from sauron.abi import layout
from sauron.agent.diagnosing import Diagnosing
from sauron.agent.runtime import AgentRuntime, ProgramMaps
from sauron.bpf import libbpf
from sauron.bpf.loader import DataPlane
from sauron.bpf.measurements import MeasureSettings, apply_settings
from sauron.bpf.rules import program_catalog
from sauron.catalog import Catalog, parse_catalog
from sauron.diagnosis.host_counters import read_host
from sauron.diagnosis.probe import DiagnosisProbe, probe_in
from sauron.service import schemas
from sauron.service.app import ServiceOptions, create_app

pytestmark = [pytest.mark.kernel]

TOKEN = "diagnosis-reader"
UL_TEID = 0x10007


def strict_catalog() -> Catalog:
    """The default catalog, eMBB's transit p99 limit set at 0.1 us."""
    raw = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "slices" / "default.yaml").read_text()
    )
    for s in raw["slices"]:
        if s["name"] == "embb":
            s["sla"] = {"transit_latency_ms": {"p99": 0.0001}}
            s["transit_sample_one_in"] = 1
    return parse_catalog(raw, "the default catalog, eMBB strict")


@pytest.fixture(scope="module")
def probe() -> Iterator[DiagnosisProbe]:
    with probe_in(Path("/sys/fs/bpf") / f"sauron-test-diag-api-{os.getpid()}") as p:
        yield p


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


def test_a_degraded_slice_is_diagnosed_and_the_api_names_the_hog(
    dataplane: DataPlane, probe: DiagnosisProbe, tmp_path: Path
) -> None:
    catalog = strict_catalog()
    program_catalog(dataplane, catalog)
    apply_settings(dataplane, MeasureSettings(transit_one_in=((1, 1),)))
    clock = ManualClock(5_000_000.0)
    runtime = AgentRuntime(catalog, ProgramMaps(dataplane, shortcut=False), clock=clock)
    hog_name = f"hog-{uuid.uuid4().hex[:8]}"
    worker = worker_on()
    hog = start_hog(hog_name)
    loop = Diagnosing(
        runtime.engine.sla,
        probe,
        lambda: {worker.pid: "upf-worker"},
        lambda tgids: read_host(tgids, {}),
        tail=1,
    )
    runtime.diagnosing = loop
    runtime.listen("diagnosis", loop.on_snapshot)
    try:
        time.sleep(0.3)
        with serve_in_thread(create_app(runtime, ServiceOptions(token=TOKEN))) as url:
            for _ in range(2):  # healthy: nothing carried, nothing checked
                clock.t += 1
                runtime.engine.tick()
            assert not probe.attached
            assert api_get(url, "/api/v1/slices/embb/diagnosis")["diagnoses"] == []

            send(dataplane, 50, 0)  # every transit time is above 0.1 us
            clock.t += 1
            runtime.engine.tick()
            assert probe.attached, "the first failed check attaches the probe"

            send(dataplane, 50, 50)
            time.sleep(1.0)  # the worker waits behind the hog meanwhile
            clock.t += 1
            runtime.engine.tick()

            doc = api_get(url, "/api/v1/slices/embb/diagnosis")
            report = schemas.DiagnosisReport.model_validate(doc)
            assert report.enabled and report.probe is not None and report.probe.attached
            assert report.episode is not None
            assert report.episode.targets == ["transit_latency_ms.p99.uplink"]
            newest, first = report.diagnoses[0], report.diagnoses[-1]
            assert first.unmeasured and "attached at the end" in first.unmeasured[0]
            assert newest.target == "transit_latency_ms.p99.uplink" and newest.limit == 0.0001
            wait = next(f for f in newest.factors if f.name == "run_queue_wait")
            held = wait.evidence["held_by"]
            assert (held["comm"], held["pid"], held["cpu"]) == (hog_name, hog.pid, CPU)
            # the summary tells the failing figure and its first factor (here the
            # time inside the UPF: a test_run frame's transit is not the worker's)
            assert newest.summary.startswith("embb: transit_latency_ms p99 ")
            assert newest.factors[0].share >= wait.share

            token = tmp_path / "token"
            token.write_text(TOKEN)
            shown = subprocess.run(
                [sys.executable, "-m", "sauron", "diagnose", "embb", "--url", url,
                 "--token-file", str(token)],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert shown.returncode == 0, shown.stderr
            assert (
                "embb: degraded since interval" in shown.stdout and "probe attached" in shown.stdout
            )
            assert newest.summary in shown.stdout
            assert "run_queue_wait" in shown.stdout
            assert f"the CPU held by {hog_name} (pid {hog.pid}) on CPU {CPU}" in shown.stdout

            # a third failed check opens the violation: its event carries the
            # diagnosis of that interval, which the exporters write with it
            send(dataplane, 50, 100)
            clock.t += 1
            runtime.engine.tick()
            (event,) = schemas.SlaReport.model_validate(api_get(url, "/api/v1/sla")).events
            assert event.target == "transit_latency_ms.p99.uplink" and event.end_reason is None
            latest = loop.latest("embb")
            assert latest is not None and event.diagnosis == latest.diagnosis.summary
            (opened,) = [c for c in runtime.engine.sla.changes if c[0] == "opened"]
            assert opened[1].diagnosis == latest.diagnosis.summary

            missing = urllib.request.Request(
                url + "/api/v1/slices/embbb/diagnosis", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(missing, timeout=5)
            assert refused.value.code == 404
    finally:
        probe.detach()  # the module's probe is closed by its fixture
        probe.watch({})
        for p in (hog, worker):
            p.kill()
            p.wait()
