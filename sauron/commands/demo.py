"""`sauron demo`: the agent on the UPFs of the netns testbed, three slices of
real traffic, the energy estimator on, and a story in four phases
(sauron.commands.demo_story): healthy, eMBB's bulk load, eMBB's UPF
rate-limiting it under its SLA's minimum, and URLLC's UPF delaying its
packets beyond its transit target. Every violation is explained
from what the agent measured, or said to be unexplained; each latency or
loss violation carries the agent's own diagnosis (its delay and loss
factors, traced while the slice was degraded) and the pcapng of the
slice's frame heads meanwhile.

One UPF process per slice, as Open5GS deployments run them: a slice's
queue is its own, so eMBB's downloads do not fill URLLC's UPF; what they
still share is the host's CPUs, and the demo says so when that shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from sauron.agent.diagnosing import Diagnosing
from sauron.agent.interfaces import attach_interfaces, receiving_links
from sauron.agent.runtime import AgentRuntime, ProgramMaps
from sauron.agent.securing import Securing
from sauron.bpf.evidence import EvidenceTap
from sauron.bpf.loader import DataPlane
from sauron.bpf.measurements import TransitExpiry, apply_settings, settings_for
from sauron.bpf.rules import program_catalog
from sauron.catalog import Catalog, load_catalog
from sauron.commands.demo_story import (
    BULK_SLICE,
    DELAY,
    DELAY_MS,
    DELAYED_SLICE,
    LIMIT,
    LIMIT_MBPS,
    LOAD,
    PHASES,
    Explanation,
    Timeline,
    explain,
)
from sauron.commands.demo_view import DemoView, Frame, terminal_view
from sauron.commands.views import clock, with_unit
from sauron.diagnosis.evidence import EvidenceKeeper
from sauron.diagnosis.host_counters import read_host
from sauron.diagnosis.probe import DiagnosisProbe
from sauron.diagnosis.probe import probe_in as diagnosis_probe_in
from sauron.energy.meter import EnergyMeter, EnergyUnavailable, detect_setup
from sauron.energy.probe import probe_in
from sauron.energy.profiles import ProfileError
from sauron.energy.watch import WatchEntry
from sauron.export.influx.publisher import Publisher
from sauron.kpi.history import add_security
from sauron.kpi.records import Snapshot
from sauron.kpi.sla import Violation
from sauron.security.report import event_doc
from sauron.security.settings import SecurityConfig
from sauron.service.app import create_app
from sauron.service.documents import snapshot_doc
from sauron.service.schemas import SnapshotDoc
from sauron.service.serving import service_runner
from sauron.testbed.bed import CORE_NETWORKS, N3_GNB, Testbed
from sauron.testbed.sessions import Impairment, SessionsFile, make_sessions
from sauron.testbed.ue_apps import Traffic

UES = {"embb": 2, "urllc": 4, "mmtc": 40}
BROKEN = {BULK_SLICE: Impairment(rate_mbps=LIMIT_MBPS)}
DELAYED = {**BROKEN, DELAYED_SLICE: Impairment(delay_ms=DELAY_MS)}
#: the summary and the figures of a run, beside the testbed's ground truth
SUMMARY_FILE = "demo.json"
#: where each violation's pcapng goes, in the demo's folder
EVIDENCE_DIR = "evidence"
#: healthy intervals a diagnosis outlasts its slice's last failure
DIAGNOSIS_TAIL = 3


def _open_energy(
    stack: contextlib.ExitStack, catalog: Catalog, dp: DataPlane, bed: Testbed
) -> EnergyMeter:
    watch = [WatchEntry(name=name, slice=name.removeprefix("upf-")) for name in bed.upf_pids()]
    watch += [WatchEntry(pid=bed.processes[node].pid) for node in ("gnb", "dn")]
    probe = stack.enter_context(probe_in(Path(f"/sys/fs/bpf/sauron-demo-{os.getpid()}")))
    setup = detect_setup()
    stack.callback(setup.frequency.close)
    if setup.counter is not None:
        stack.callback(setup.counter.close)
    return EnergyMeter(
        catalog,
        probe,
        setup,
        dp.entry_program_fds(),
        watch,
        receiving_links=receiving_links(bed.interfaces()),
    )


@contextlib.contextmanager
def demo_energy(
    catalog: Catalog, dp: DataPlane, bed: Testbed
) -> Iterator[tuple[EnergyMeter | None, str]]:
    """The energy estimator over the testbed: each slice's UPF bound to its
    slice, the gNB and the DN shared by the packets Sauron saw; None and
    why when this machine cannot run it (the demo runs on without)."""
    with contextlib.ExitStack() as stack:
        try:
            meter: EnergyMeter | None = _open_energy(stack, catalog, dp, bed)
            reason = ""
        except (OSError, RuntimeError, ProfileError, EnergyUnavailable) as exc:
            stack.close()
            meter, reason = None, f"the energy estimator could not start: {exc}"
        yield meter, reason


@contextlib.contextmanager
def demo_diagnosing(
    catalog: Catalog, dp: DataPlane, bed: Testbed, sla: Any, workdir: Path
) -> Iterator[Diagnosing]:
    """The agent's diagnosis loop over the slices' UPFs: the kernel probe
    built here (without it, diagnoses come from the kernel's counters and
    say so), and the evidence tap of the demo's own data path."""
    with contextlib.ExitStack() as stack:
        probe: DiagnosisProbe | None = None
        missing = ""
        try:
            folder = Path(f"/sys/fs/bpf/sauron-demo-diagnosis-{os.getpid()}")
            probe = stack.enter_context(diagnosis_probe_in(folder))
            missing = probe.waits_unknown
        except (OSError, RuntimeError) as exc:
            missing = f"the diagnosis probe could not start: {exc}"
        upfs = {pid: name for name, pid in bed.upf_pids().items()}
        # one UPF per slice: each serves the slice it is named after
        bound = {pid: name.removeprefix("upf-") for pid, name in upfs.items()}
        evidence = EvidenceKeeper(
            EvidenceTap(dp), lambda: {s.name: s.id for s in catalog.slices}, workdir / EVIDENCE_DIR
        )
        loop = Diagnosing(
            sla,
            probe,
            lambda: dict(upfs),
            lambda tgids: read_host(tgids, {}),
            probe_missing=missing,
            tail=DIAGNOSIS_TAIL,
            evidence=evidence,
            bound=lambda: bound,
        )
        stack.callback(loop.close)  # the probe detached, the capture stopped
        yield loop


def demo_security(dp: DataPlane, interval_s: float) -> Securing:
    """The security checks as an operator of this testbed sets them: the
    gNB its one peer, the core's own networks protected. The demo's
    traffic is all legitimate: any count or detection is a false alarm."""
    config = SecurityConfig.model_validate({"peers": [N3_GNB], "protected": list(CORE_NETWORKS)})
    return Securing(config, dp, interval_s)


@dataclass
class Story:
    """What the demo has seen so far: every snapshot, the phases begun,
    the violations already told."""

    catalog: Catalog
    view: DemoView
    duration_s: float
    started: float = field(default_factory=time.time)
    timeline: Timeline = field(default_factory=lambda: Timeline([]))
    snapshots: list[Snapshot] = field(default_factory=list)
    told_open: set[int] = field(default_factory=set)
    told_closed: set[int] = field(default_factory=set)

    def begin(self, name: str) -> None:
        phase = next(p for p in PHASES if p.name == name)
        now = time.time()
        self.timeline.begun.append((phase, now))
        self.view.say(f">>> {clock(now)} phase {phase.name}: {phase.announcement}")

    def heard(self, snap: Snapshot, violations: list[Violation]) -> None:
        """The engine's listener: the table, then what changed in the SLA."""
        self.snapshots.append(snap)
        phase = self.timeline.phase_at(snap.time)
        doc = SnapshotDoc.model_validate(snapshot_doc(snap))
        self.view.show(
            Frame(doc, phase.name if phase else "-", snap.time - self.started, self.duration_s)
        )
        for i, v in enumerate(violations):
            if i not in self.told_open:
                self.told_open.add(i)
                self.view.say(
                    f"!!! {clock(v.started_at)} {v.slice_name} violated {v.target}: "
                    f"{with_unit(v.target, v.worst)} against {with_unit(v.target, v.limit)}"
                    f" - {self.explain(v).words}"
                )
                if v.diagnosis:
                    self.view.say(f"    diagnosis: {v.diagnosis}")
                if v.evidence:
                    self.view.say(f"    its frames' heads: {v.evidence}")
            if not v.open and i not in self.told_closed:
                self.told_closed.add(i)
                self.view.say(
                    f"ok  {clock(v.ended_at)} {v.slice_name} {v.target} met again ({v.end_reason})"
                )

    def explain(self, v: Violation) -> Explanation:
        return explain(v, self.snapshots, self.timeline)


async def _serve(
    runtime: AgentRuntime,
    bed: Testbed,
    traffic: Traffic,
    story: Story,
    host: str,
    port: int,
) -> None:
    async with runtime:
        runner = service_runner(create_app(runtime))
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
            # port 0 asks the kernel for a free one; say which it gave
            bound = runner.addresses[0][1] if runner.addresses else port
            story.view.say(
                f"dashboard: http://{host}:{bound}/   API: http://{host}:{bound}/api/v1/slices"
            )
            story.begin(PHASES[0].name)
            for phase, after in zip(PHASES[1:], PHASES, strict=False):
                await asyncio.sleep((phase.starts_at - after.starts_at) * story.duration_s)
                if phase.name == LOAD:
                    traffic.bulk.set()
                elif phase.name == LIMIT:
                    bed.set_impairments(BROKEN)
                elif phase.name == DELAY:
                    bed.set_impairments(DELAYED)
                story.begin(phase.name)
            await asyncio.sleep((1 - PHASES[-1].starts_at) * story.duration_s)
        finally:
            await runner.cleanup()


def summary(
    story: Story,
    violations: list[Violation],
    energy_off: str,
    security_events: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Each slice's traffic, energy and failed security checks over the
    run, every violation with its explanation, and every security
    detection."""
    last = story.snapshots[-1] if story.snapshots else None
    slices: dict[str, Any] = {}
    for s in story.catalog.slices:
        kpis = [snap.slices[s.name] for snap in story.snapshots if s.name in snap.slices]
        energy = last.slices[s.name].energy if last is not None else None
        traffic_bytes = sum(k.energy.bytes for k in kpis if k.energy is not None)
        slices[s.name] = {
            "uplink_packets": sum(k.uplink.packets_in for k in kpis),
            "downlink_packets": sum(k.downlink.packets_in for k in kpis),
            "megabytes": sum(k.uplink.bytes_in + k.downlink.bytes_in for k in kpis) / 1e6,
            "peak_downlink_mbps": max((k.downlink.mbps for k in kpis), default=0.0),
            "joules": energy.cumulative_joules if energy is not None else None,
            "joules_per_gb": (
                energy.cumulative_joules / (traffic_bytes / 1e9)
                if energy is not None and traffic_bytes
                else None
            ),
            "security": add_security([k.security for k in kpis]),
        }
    measured_s = sum(snap.interval_s for snap in story.snapshots)
    node = last.energy if last is not None else None
    return {
        "started": story.started,
        "measured_s": measured_s,
        "phases": [{"name": p.name, "began": at} for p, at in story.timeline.begun],
        "energy": (
            {"method": node.method, "profile": node.profile, "cycle_source": node.cycle_source}
            if node is not None
            else {"off": energy_off}
        ),
        "slices": slices,
        "violations": [
            {**vars(v), "open": v.open, "explanation": vars(story.explain(v))} for v in violations
        ],
        "security_events": security_events or [],
    }


def summary_lines(doc: dict[str, Any]) -> list[str]:
    """The closing summary, in units and clock times."""
    measured = doc["measured_s"]
    lines = [
        "",
        f"summary of {measured:.0f} s measured from {clock(doc['started'])}:",
        f"{'slice':<10}{'UL pkts':>10}{'DL pkts':>10}{'MB':>9}{'peak DL Mbit/s':>16}"
        f"{'J':>9}{'mean W':>9}{'J/GB':>9}",
    ]
    for name, s in doc["slices"].items():
        joules = s["joules"]
        mean_w = f"{joules / measured:.2f}" if joules is not None and measured else "-"
        lines.append(
            f"{name:<10}{s['uplink_packets']:>10}{s['downlink_packets']:>10}"
            f"{s['megabytes']:>9.1f}{s['peak_downlink_mbps']:>16.2f}"
            f"{'-' if joules is None else f'{joules:.1f}':>9}{mean_w:>9}"
            f"{'-' if s['joules_per_gb'] is None else format(s['joules_per_gb'], '.0f'):>9}"
        )
    energy = doc["energy"]
    lines.append(
        f"energy: {energy['off']}"
        if "off" in energy
        else f"energy: power model {energy['method']} ({energy['profile']}), "
        f"cycles from {energy['cycle_source']}; the gNB's and DN's CPU time is shared by packets"
    )
    lines.append(security_line(doc))
    violations = doc["violations"]
    lines += ["", f"SLA violations: {len(violations)}"]
    for v in violations:
        until = "still open" if v["open"] else f"until {clock(v['ended_at'])} ({v['end_reason']})"
        lines.append(
            f"  {v['slice_name']} {v['target']}: limit {with_unit(v['target'], v['limit'])}, "
            f"worst {with_unit(v['target'], v['worst'])}, from {clock(v['started_at'])} {until}"
        )
        lines.append(f"    {v['explanation']['kind']}: {v['explanation']['words']}")
        if v.get("diagnosis"):
            lines.append(f"    diagnosis: {v['diagnosis']}")
        if v.get("evidence"):
            lines.append(f"    evidence: {v['evidence']} (tshark -r, sauron replay)")
    unexplained = sum(v["explanation"]["kind"] == "unexplained" for v in violations)
    lines.append(
        f"{unexplained} violations have no explanation in the demo's phases"
        if unexplained
        else "every violation is explained above"
    )
    return lines


def security_line(doc: dict[str, Any]) -> str:
    """The security checks' findings over the run, in one line."""
    failed = [
        f"{name} {kind} {count}"
        for name, s in doc["slices"].items()
        for kind, count in (s.get("security") or {}).items()
        if count
    ]
    detected = [
        f"{e['kind']} from {e['peer']} ({e['slice']}, {e['count']} frames)"
        for e in doc.get("security_events", [])
    ]
    return (
        "security checks: "
        + (f"frames failed {', '.join(failed)}" if failed else "no frame failed one")
        + (f"; detected {', '.join(detected)}" if detected else ", nothing detected")
    )


def run_demo(
    duration: float,
    catalog: Catalog | None = None,
    view: DemoView | None = None,
    workdir: Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8080,
    publisher: Publisher | None = None,
) -> dict[str, Any]:
    """Runs the demo; returns (and writes to workdir/demo.json) the summary,
    with the testbed's ground truth."""
    catalog = catalog or load_catalog()
    view = view or terminal_view()
    sessions = SessionsFile(sessions=make_sessions(catalog, UES, qfi={"urllc": 1, "mmtc": 5}))
    workdir = workdir or Path(tempfile.mkdtemp(prefix="sauron-demo-"))
    dp = DataPlane()
    program_catalog(dp, catalog)
    # both sides of the UPF are watched: transit stamps can be matched
    apply_settings(dp, settings_for(catalog))
    expiry = TransitExpiry(dp)

    def attach(bed: Testbed) -> None:
        attach_interfaces(dp, bed.interfaces(), bed.links)

    story = Story(catalog, view, duration)
    with (
        dp,
        Testbed(catalog, sessions, workdir, before_nodes=attach, upf_per_slice=True) as bed,
        demo_energy(catalog, dp, bed) as (meter, energy_off),
        contextlib.ExitStack() as stack,
    ):
        view.say(
            f"testbed up: gNB {bed.gnb}, UPFs {', '.join(bed.upf_pids())} in {bed.upf}, "
            f"DN {bed.dn}; the agent on the UPFs' n3 and n6; ground truth in {workdir}"
        )
        if energy_off:
            view.say(f"energy not measured: {energy_off}")
        traffic = Traffic(bed, sessions)
        traffic.start(bulk=False)
        runtime = AgentRuntime(
            catalog,
            ProgramMaps(dp, expiry, catalog.slice_rows),
            energy=meter,
            energy_off=energy_off,
            exporters=[publisher] if publisher is not None else [],
        )
        diagnosing = stack.enter_context(
            demo_diagnosing(catalog, dp, bed, runtime.engine.sla, workdir)
        )
        runtime.diagnosing = diagnosing
        # first: a violation the story tells already carries its diagnosis
        runtime.listen("diagnosis", diagnosing.on_snapshot, first=True)
        security = demo_security(dp, runtime.interval_s)
        runtime.secure(security)
        runtime.engine.listeners.append(lambda snap: story.heard(snap, runtime.engine.sla.events))
        story.started = time.time()
        try:
            with view:
                asyncio.run(_serve(runtime, bed, traffic, story, host, port))
        except KeyboardInterrupt:
            view.say("interrupted")
        finally:
            traffic.join()
            stack.close()
        truth = bed.stop()
    doc = summary(
        story,
        runtime.engine.sla.events,
        energy_off,
        [event_doc(e, catalog) for e in security.events()],
    )
    for line in summary_lines(doc):
        view.say(line)
    if publisher is not None:
        h = publisher.summary()
        view.say(
            f"InfluxDB {h['url']} bucket {h['bucket']}: {h['points_written']} points written, "
            f"{h['spool_points']} waiting in the spool, {h['points_dropped']} dropped"
        )
    result = {**doc, "truth": truth, "workdir": str(workdir)}
    (workdir / SUMMARY_FILE).write_text(json.dumps(result, indent=2, default=str) + "\n")
    return result
