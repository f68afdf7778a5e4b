"""The agent's diagnoses: each interval, in the engine's thread right after
its tick, the SLA tracker's target states feed the trigger
(sauron.diagnosis.trigger); while an episode lasts the diagnosis probe is
attached, and every degraded interval it was attached for becomes one
diagnosis per failing latency or loss target (sauron.diagnosis.explain),
with the kernel's counters of that interval and of the healthy interval
before the episode as its baseline. Detached again a tail after the last
failure: the probe costs nothing while every slice is healthy.

The interval in which a degradation is first seen is not diagnosed with the
probe (it was not attached during it); the kernel's counters, read every
interval, cover it."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from sauron.abi import diagnosis_layout as dl
from sauron.agent.config import DiagnosisConfig
from sauron.bpf.evidence import EvidenceTap
from sauron.diagnosis.evidence import EvidenceFile, EvidenceKeeper
from sauron.diagnosis.explain import (
    Diagnosed,
    Evidence,
    Failing,
    Losses,
    diagnose,
    loss_lookback_s,
)
from sauron.diagnosis.host_counters import HostHistory, HostReading, read_host
from sauron.diagnosis.probe import DiagnosisProbe, DiagnosisReading
from sauron.diagnosis.softirq_threads import softirq_threads
from sauron.diagnosis.trigger import TRIGGERING, DiagnosisTrigger, Episode, degraded_targets
from sauron.energy.watch import WatchEntry, resolve
from sauron.kpi.records import SliceKpis, Snapshot
from sauron.kpi.sla import Violation

log = logging.getLogger(__name__)

FIRST_INTERVAL = "attached at the end of the interval the degradation was first seen in"


class TargetStates(Protocol):
    """What the orchestration needs of the SLA tracker (sauron.kpi.sla)."""

    def target_states(self, slice_name: str) -> dict[str, str]: ...
    def open_violations(self, slice_name: str) -> list[Violation]: ...


class Probe(Protocol):
    """What the orchestration needs of sauron.diagnosis.probe.DiagnosisProbe."""

    @property
    def attached(self) -> bool: ...
    def watch(self, tgids: Mapping[int, int]) -> None: ...
    def attach(self) -> None: ...
    def detach(self) -> None: ...
    def read(self) -> DiagnosisReading: ...
    def close(self) -> None: ...


def _mbps(kpis: SliceKpis) -> float:
    return kpis.uplink.mbps + kpis.downlink.mbps


def _losses(kpis: SliceKpis, target: str) -> Losses:
    """The losses counted in the failing target's direction."""
    direction = target.rsplit(".", 1)[-1]
    k = kpis.downlink if direction == "downlink" else kpis.uplink
    return Losses(radio_side=k.loss.sequence_lost, inside_upf=k.loss.transit_lost)


class Diagnosing:
    """diagnosing.on_snapshot(snapshot) each interval; `latest` and
    `history(slice)` hold what it found.

    `watched()` gives the network functions to diagnose, {tgid: name};
    `read_host(tgids)` the kernel's counters for them; `probe` is None when
    it could not be opened (`probe_missing` says why): diagnoses are then
    made from the counters alone, and say what they could not measure."""

    def __init__(
        self,
        sla: TargetStates,
        probe: Probe | None,
        watched: Callable[[], dict[int, str]],
        read_host: Callable[[list[int]], HostReading],
        probe_missing: str = "",
        tail: int = 5,
        keep: int = 100,
        evidence: EvidenceKeeper | None = None,
        evidence_missing: str = "",
        bound: Callable[[], Mapping[int, str]] = dict,
    ) -> None:
        self.sla, self.probe, self.probe_missing = sla, probe, probe_missing
        #: the frames' heads of the slices diagnosed (None: not kept, and why)
        self.evidence, self.evidence_missing = evidence, evidence_missing
        self.watched, self.read_host = watched, read_host
        #: {tgid: slice} of the watched processes bound to one slice: they
        #: serve it alone (one UPF per slice); the others serve every slice
        self.bound = bound
        self._serves: dict[int, str] = {}  # watch index -> its one slice
        self.trigger = DiagnosisTrigger(tail)
        self.keep = keep
        self._interval = 0
        self._tgids: dict[int, int] = {}  # tgid -> watch index
        self._names: dict[int, str] = {}  # watch index -> name
        self._host: HostReading | None = None
        self._host_history = HostHistory()
        self._loss_host: HostReading | None = None
        #: the interval before the current one: its counters and throughput
        self._before: tuple[HostReading, dict[str, float]] | None = None
        #: per slice: the baseline of its episode (counters, throughput)
        self._baselines: dict[str, tuple[HostReading | None, dict[str, float]]] = {}
        self._probe_reading: DiagnosisReading | None = None
        self._history: dict[str, deque[Diagnosed]] = {}

    # -- results ----------------------------------------------------------

    def history(self, slice_name: str) -> list[Diagnosed]:
        """The slice's diagnoses, oldest first (at most `keep`)."""
        return list(self._history.get(slice_name, ()))

    def latest(self, slice_name: str) -> Diagnosed | None:
        found = self._history.get(slice_name)
        return found[-1] if found else None

    def episode(self, slice_name: str) -> Episode | None:
        """The slice's degradation being diagnosed now (tail included)."""
        return self.trigger.episodes.get(slice_name)

    def evidence_files(self, slice_name: str) -> list[EvidenceFile]:
        """The pcapng files of the slice's violations, newest first."""
        return self.evidence.files(slice_name) if self.evidence is not None else []

    @property
    def probe_attached(self) -> bool:
        return self.probe is not None and self.probe.attached

    @property
    def probe_available(self) -> bool:
        return self.probe is not None

    def close(self) -> None:
        """Detaches the probe, stops the evidence capture, and lets go of
        their pins (they stay, for the next agent)."""
        if self.evidence is not None:
            self.evidence.close()
        if self.probe is not None:
            if self.probe.attached:
                self.probe.detach()
            self.probe.close()

    # -- each interval ----------------------------------------------------

    def _refresh_watch(self) -> None:
        found = self.watched()
        if set(found) == set(self._tgids):
            return
        self._tgids = {tgid: index for index, tgid in enumerate(sorted(found))}
        self._names = {index: f"{found[tgid]} (pid {tgid})" for tgid, index in self._tgids.items()}
        bound = self.bound()
        self._serves = {i: bound[tgid] for tgid, i in self._tgids.items() if tgid in bound}
        if self.probe is not None:
            self.probe.watch(self._tgids)

    def on_snapshot(self, snap: Snapshot) -> None:
        self._interval += 1
        self._refresh_watch()
        host = self.read_host(sorted(self._tgids))
        moved = host.since(self._host) if self._host is not None else None
        self._host = host
        self._host_history.add(snap.time, host)
        self._loss_host = self._host_history.moved_over(loss_lookback_s(snap.interval_s))
        throughput = {name: _mbps(k) for name, k in snap.slices.items()}

        probe_moved: DiagnosisReading | None = None
        was_attached = self.probe is not None and self.probe.attached
        if self.probe is not None and was_attached:
            reading = self.probe.read()
            if self._probe_reading is not None:
                probe_moved = reading.since(self._probe_reading)
            self._probe_reading = reading

        degraded = {name: degraded_targets(self.sla.target_states(name)) for name in snap.slices}
        changes = self.trigger.observe(self._interval, degraded, snap.time)
        for episode in changes.began:
            before = self._before
            self._baselines[episode.slice_name] = (
                (before[0], before[1]) if before is not None else (None, {})
            )
            log.warning(
                "slice degraded: diagnosing",
                extra={"slice": episode.slice_name, "targets": sorted(episode.targets)},
            )
        for episode in changes.ended:
            self._baselines.pop(episode.slice_name, None)
            log.info("slice recovered: diagnosis ended", extra={"slice": episode.slice_name})

        if moved is not None:
            for name in self.trigger.episodes:
                kpis = snap.slices.get(name)
                if kpis is None:
                    continue
                self._diagnose(snap.time, kpis, moved, probe_moved, was_attached, throughput)

        if self.evidence is not None:
            self._keep_evidence(self.evidence)

        if self.probe is not None:
            if self.trigger.attached and not self.probe.attached:
                self.probe.attach()
                self._probe_reading = self.probe.read()
            elif not self.trigger.attached and self.probe.attached:
                self.probe.detach()
                self._probe_reading = None
        if moved is not None and not self.trigger.attached:
            self._before = (moved, throughput)

    def _keep_evidence(self, evidence: EvidenceKeeper) -> None:
        """The frames the data path copied this interval to their slices'
        rings, each open latency or loss violation's file grown by them;
        then the capture follows the episodes (on from the end of the
        interval a degradation is first seen in, off with its tail)."""
        evidence.collect()
        for name in self.trigger.episodes:
            for violation in self.sla.open_violations(name):
                if violation.target.split(".", 1)[0] not in TRIGGERING:
                    continue
                found = evidence.record(name, violation.target, violation.started_at)
                if found is not None:
                    violation.evidence = str(found.path)
        evidence.watch(self.trigger.episodes)

    def _diagnose(
        self,
        at: float,
        kpis: SliceKpis,
        moved: HostReading,
        probe_moved: DiagnosisReading | None,
        was_attached: bool,
        throughput: dict[str, float],
    ) -> None:
        failing = [c for c in kpis.checks if not c.ok and c.target.split(".", 1)[0] in TRIGGERING]
        if not failing:
            return
        baseline_host, baseline_mbps = self._baselines.get(kpis.name, (None, {}))
        if self.probe is None:
            missing = self.probe_missing or "no diagnosis probe"
        elif not was_attached or probe_moved is None:
            missing = FIRST_INTERVAL
        else:
            missing = ""
        history = self._history.setdefault(kpis.name, deque(maxlen=self.keep))
        # the functions that serve this slice: another slice's own UPF is
        # not why this one is late
        serving = {i for i in self._names if self._serves.get(i, kpis.name) == kpis.name}
        for check in failing:
            evidence = Evidence(
                functions={i: name for i, name in self._names.items() if i in serving},
                probe=_serving(probe_moved, serving) if not missing else None,
                probe_missing=missing,
                host=moved,
                loss_host=self._loss_host,
                baseline_host=baseline_host,
                losses=_losses(kpis, check.target),
                throughput={
                    name: (now, baseline_mbps.get(name, now)) for name, now in throughput.items()
                },
            )
            found = diagnose(kpis.name, Failing(check.target, check.limit, check.value), evidence)
            history.append(Diagnosed(at, found))
            for violation in self.sla.open_violations(kpis.name):
                if violation.target == check.target:
                    violation.diagnosis = found.summary


def _serving(reading: DiagnosisReading | None, indexes: set[int]) -> DiagnosisReading | None:
    """The probe's reading of the watched functions in `indexes` only."""
    if reading is None:
        return None
    return replace(
        reading,
        waits={key: h for key, h in reading.waits.items() if key[0] in indexes},
        tasks={i: t for i, t in reading.tasks.items() if i in indexes},
        culprits={i: c for i, c in reading.culprits.items() if i in indexes},
    )


#: intervals between two searches of /proc for the watched processes
RESOLVE_EVERY = 10


class WatchedProcesses:
    """The watched network functions' processes by name or pid, found in
    /proc every RESOLVE_EVERY calls (a UPF that restarts is found again),
    as {tgid: its name}, with the kernel's softirq threads."""

    def __init__(self, entries: list[WatchEntry], proc: Path = Path("/proc")) -> None:
        self.entries = [e for e in entries if e.cgroup is None]
        self.proc = proc
        self._calls = 0
        self._found: dict[int, str] = {}
        self._bound: dict[int, str] = {}

    def __call__(self) -> dict[int, str]:
        if self._calls % RESOLVE_EVERY == 0 or any(
            not (self.proc / str(tgid)).exists() for tgid in self._found
        ):
            resolved = resolve(self.entries, self.proc)
            self._found = {
                tgid: self.entries[index].name or f"pid {tgid}"
                for tgid, index in resolved.tgids.items()
            }
            self._bound = {
                tgid: bound
                for tgid, index in resolved.tgids.items()
                if (bound := self.entries[index].slice) is not None
            }
            room = dl.WATCHED - len(self._found)
            self._found |= softirq_threads(room, self.proc)
        self._calls += 1
        return dict(self._found)

    def bound(self) -> dict[int, str]:
        """{tgid: slice} of the processes found whose entry names a slice."""
        return dict(self._bound)


def open_diagnosing(
    settings: DiagnosisConfig,
    energy_watch: list[WatchEntry],
    sla: TargetStates,
    build: Path | None,
    build_failed: str,
    tun_links: list[str],
    dataplane: object | None = None,
    slice_ids: Callable[[], Mapping[str, int]] = dict,
) -> Diagnosing | None:
    """The diagnosis loop over the probe the data path's build pinned (or
    over the kernel's counters alone, and why, when the probe cannot be
    had); None when diagnosis is off."""
    if not settings.enabled:
        return None
    probe: DiagnosisProbe | None = None
    missing = ""
    if build is None:
        missing = build_failed or "the diagnosis probe was not built"
    else:
        try:
            probe = DiagnosisProbe(build)
        except OSError as exc:
            missing = f"the diagnosis probe could not open: {exc}"
        else:
            missing = probe.waits_unknown
    if missing:
        log.warning("diagnosis without the kernel probe", extra={"reason": missing})
    evidence, evidence_missing = _open_evidence(settings, dataplane, slice_ids)
    entries = settings.watch if settings.watch is not None else energy_watch
    watched = WatchedProcesses(entries)
    return Diagnosing(
        sla,
        probe,
        watched,
        lambda tgids: read_host(tgids, {tgid: tun_links for tgid in tgids}),
        probe_missing=missing,
        tail=settings.tail_intervals,
        keep=settings.keep,
        evidence=evidence,
        evidence_missing=evidence_missing,
        bound=watched.bound,
    )


def _open_evidence(
    settings: DiagnosisConfig, dataplane: object | None, slice_ids: Callable[[], Mapping[str, int]]
) -> tuple[EvidenceKeeper | None, str]:
    """The evidence keeper over the data path's ring, or why there is none."""
    wanted = settings.evidence
    if not wanted.enabled:
        return None, "diagnosis.evidence.enabled is false"
    if dataplane is None:
        return None, "no data path"
    try:
        tap = EvidenceTap(dataplane)
    except (OSError, KeyError) as exc:
        # a data path adopted from a build without the ring
        log.warning("no evidence capture", extra={"reason": str(exc)})
        return None, f"the data path has no evidence ring: {exc}"
    keeper = EvidenceKeeper(
        tap,
        slice_ids,
        wanted.directory,
        ring_frames=wanted.ring_frames,
        max_file_bytes=int(wanted.max_file_mib * (1 << 20)),
        max_total_bytes=int(wanted.max_total_mib * (1 << 20)),
    )
    return keeper, ""
