"""A slice degraded on purpose and diagnosed through the agent's own loop,
for the tests that read diagnoses as an operator does (REST, `sauron
diagnose`, the dashboard): the runtime over the real programs (G-PDUs
through BPF_PROG_TEST_RUN at N3 ingress and N6 egress), eMBB's transit p99
target set below what any packet takes, and the real diagnosis probe
watching a "UPF" worker that shares its CPU with a named hog
(cpu_contention). What makes the figure fail is set by the test (a target
no packet can meet); the cause injected into a real UPF is the testbed's
part of the issue."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml
from cpu_contention import hog as start_hog
from cpu_contention import worker as worker_on
from frames import gtpu, plain, ul_packet
from manual_clock import ManualClock

from sauron.abi import layout
from sauron.agent.diagnosing import Diagnosing
from sauron.agent.runtime import AgentRuntime, ProgramMaps
from sauron.bpf import libbpf
from sauron.bpf.evidence import EvidenceTap
from sauron.bpf.loader import DataPlane
from sauron.bpf.measurements import MeasureSettings, apply_settings
from sauron.bpf.rules import program_catalog
from sauron.catalog import Catalog, parse_catalog
from sauron.diagnosis.evidence import EvidenceKeeper
from sauron.diagnosis.host_counters import read_host
from sauron.diagnosis.probe import DiagnosisProbe

UL_TEID = 0x10007
#: the watched network function's name, as `diagnosis.watch` would give it
WORKER_NAME = "upf-worker"


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


def send(dataplane: DataPlane, count: int, first: int) -> None:
    """`count` uplink G-PDUs of eMBB in at N3 and out at N6 (each transit
    time is above 0.1 us)."""
    for n in range(first, first + count):
        packet = ul_packet(f"p{n}".encode(), ip_id=n)
        libbpf.test_run(
            dataplane.program_fd(layout.POINT_N3_INGRESS), gtpu(packet, UL_TEID, uplink=True, seq=n)
        )
        libbpf.test_run(dataplane.program_fd(layout.POINT_N6_EGRESS), plain(packet))


@dataclass
class DegradedSlice:
    runtime: AgentRuntime
    clock: ManualClock
    loop: Diagnosing
    hog: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes]

    def tick(self) -> None:
        """One interval ends: the engine's snapshot, then its listeners
        (the diagnosis loop first, as the agent runs it)."""
        self.clock.t += 1
        self.runtime.engine.tick()


@contextmanager
def degraded_embb(
    dataplane: DataPlane,
    probe: DiagnosisProbe,
    hog_name: str,
    start: float = 5_000_000.0,
    worker_name: str = WORKER_NAME,
    evidence_dir: Path | None = None,
) -> Iterator[DegradedSlice]:
    """The runtime (not started: ticked by the test, its clock from
    `start`) with the diagnosis loop over `probe`, a worker watched as
    `worker_name` and a hog named `hog_name` on one CPU. Detaches the probe
    and ends both processes on exit. The hog is the worker's culprit only
    while no other task spins on that CPU (another test's hog). With
    `evidence_dir`, the degraded slice's frame heads are kept there, a
    pcapng per violation."""
    catalog = strict_catalog()
    program_catalog(dataplane, catalog)
    apply_settings(dataplane, MeasureSettings(transit_one_in=((1, 1),)))
    clock = ManualClock(start)
    runtime = AgentRuntime(catalog, ProgramMaps(dataplane, shortcut=False), clock=clock)
    worker = worker_on()
    hog = start_hog(hog_name)
    try:
        loop = Diagnosing(
            runtime.engine.sla,
            probe,
            lambda: {worker.pid: worker_name},
            lambda tgids: read_host(tgids, {}),
            tail=1,
            evidence=(
                EvidenceKeeper(
                    EvidenceTap(dataplane),
                    lambda: {s.name: s.id for s in catalog.slices},
                    evidence_dir,
                )
                if evidence_dir is not None
                else None
            ),
        )
        runtime.diagnosing = loop
        runtime.listen("diagnosis", loop.on_snapshot, first=True)
        time.sleep(0.3)  # both processes named and pinned before the first interval
        yield DegradedSlice(runtime, clock, loop, hog, worker)
    finally:
        if loop.evidence is not None:
            loop.evidence.close()  # the capture stopped, the ring let go
        probe.detach()  # the probe itself is closed by whoever opened it
        probe.watch({})
        for p in (hog, worker):
            p.kill()
            p.wait()
