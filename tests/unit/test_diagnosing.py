"""The agent's diagnosis loop, interval by interval: nothing is attached
while every slice is healthy; a latency target at risk attaches the probe
at the end of that interval (whose diagnosis says the probe was not yet
there), the next degraded interval is diagnosed from the probe's waits, and
a tail of healthy intervals later the probe is detached. The probe and the
kernel's counters are stand-ins here that count what they are asked (the
probe itself is tests/kernel/test_diagnosis_probe.py); the SLA states and
the snapshots are shaped as the engine makes them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from evidence_source import Frames

from sauron.abi import diagnosis_layout as dl
from sauron.abi.histogram import LATENCY, Histogram
from sauron.agent.diagnosing import FIRST_INTERVAL, Diagnosing, WatchedProcesses
from sauron.diagnosis.evidence import EvidenceKeeper
from sauron.diagnosis.host_counters import HostReading, UdpCounters
from sauron.diagnosis.probe import Culprit, DiagnosisReading
from sauron.energy.watch import WatchEntry
from sauron.kpi.records import Check, SliceKpis, Snapshot
from sauron.kpi.sla import Violation

MS = 1_000_000
TARGET = "transit_latency_ms.p99.uplink"


class CountingProbe:
    """Keeps cumulative waits as the kernel would: each read adds one
    interval's run-queue waits of 8 ms behind a hog while attached."""

    def __init__(self) -> None:
        self.attached = False
        self.attaches = self.detaches = 0
        self.watched: dict[int, int] = {}
        self.total = Histogram(LATENCY)
        self.held = 0

    def watch(self, tgids: Mapping[int, int]) -> None:
        self.watched = dict(tgids)

    def attach(self) -> None:
        self.attached, self.attaches = True, self.attaches + 1

    def detach(self) -> None:
        self.attached, self.detaches = False, self.detaches + 1

    def close(self) -> None:
        self.attached = False

    def read(self) -> DiagnosisReading:
        if self.attached:
            for _ in range(20):
                self.total.record(8 * MS)
            self.held += 20 * 8 * MS
        total = Histogram(LATENCY, list(self.total.buckets), self.total.count, self.total.total)
        return DiagnosisReading(
            waits={(0, dl.WAIT_RUNQUEUE): total} if total.count else {},
            culprits={0: [Culprit(4242, "stress-ng", 1, self.held, self.total.count)]},
        )


class States:
    def __init__(self) -> None:
        self.now: dict[str, dict[str, str]] = {}
        self.violations: list[Violation] = []

    def target_states(self, slice_name: str) -> dict[str, str]:
        return self.now.get(slice_name, {})

    def open_violations(self, slice_name: str) -> list[Violation]:
        return [v for v in self.violations if v.slice_name == slice_name and v.open]


def snapshot(t: float, p99_ms: float | None) -> Snapshot:
    urllc = SliceKpis(name="urllc", slice_id=2, snssai="2-000001")
    if p99_ms is not None:
        urllc.checks.append(Check("urllc", TARGET, 5.0, p99_ms, p99_ms <= 5.0))
    return Snapshot(time=t, interval_s=1.0, slices={"urllc": urllc})


def test_the_probe_is_attached_only_while_a_slice_is_degraded() -> None:
    probe, states = CountingProbe(), States()
    rcvbuf = [0]

    def host(tgids: list[int]) -> HostReading:
        rcvbuf[0] += 1
        return HostReading(udp={t: UdpCounters(0, 0, rcvbuf[0]) for t in tgids})

    loop = Diagnosing(states, probe, lambda: {812: "open5gs-upfd"}, host, tail=1)
    for t in range(3):  # healthy
        states.now = {"urllc": {TARGET: "met"}}
        loop.on_snapshot(snapshot(t, 1.0))
    assert probe.attaches == 0 and loop.history("urllc") == []
    assert probe.watched == {812: 0}

    states.now = {"urllc": {TARGET: "at risk"}}
    loop.on_snapshot(snapshot(3, 9.1))
    assert probe.attached
    episode = loop.episode("urllc")  # since the end of the interval first seen degraded
    assert episode is not None and (episode.began_at, episode.targets) == (3, {TARGET})
    (first,) = loop.history("urllc")
    assert first.time == 3 and first.diagnosis.unmeasured == [
        f"run-queue and futex waits: {FIRST_INTERVAL}"
    ]

    opened = Violation("urllc", TARGET, 5.0, started_interval=2, started_at=3, worst=9.1)
    other = Violation("urllc", "max_loss_ratio.transit.uplink", 0.01, 2, 3, 0.2)
    states.violations = [opened, other]
    loop.on_snapshot(snapshot(4, 9.1))
    second = loop.latest("urllc")
    assert second is not None and second.time == 4
    top = second.diagnosis.factors[0]
    assert top.name == "run_queue_wait" and top.evidence["function"] == "open5gs-upfd (pid 812)"
    assert "behind stress-ng (pid 4242)" in second.diagnosis.summary
    # the open violation of that target carries it; another target's does not
    assert opened.diagnosis == second.diagnosis.summary and other.diagnosis is None

    states.now = {"urllc": {TARGET: "met"}}
    loop.on_snapshot(snapshot(5, 1.0))  # the tail
    assert probe.attached
    loop.on_snapshot(snapshot(6, 1.0))
    assert not probe.attached and probe.detaches == 1
    assert len(loop.history("urllc")) == 2  # healthy intervals are not diagnosed


def test_without_a_probe_the_counters_still_diagnose_and_say_what_is_missing() -> None:
    states = States()
    loop = Diagnosing(
        states,
        None,
        lambda: {812: "open5gs-upfd"},
        lambda tgids: HostReading(),
        probe_missing="no BTF on this kernel",
    )
    states.now = {"urllc": {TARGET: "met"}}
    loop.on_snapshot(snapshot(0, 1.0))
    states.now = {"urllc": {TARGET: "violated"}}
    loop.on_snapshot(snapshot(1, 9.1))
    found = loop.latest("urllc")
    assert found is not None
    assert found.diagnosis.unmeasured == ["run-queue and futex waits: no BTF on this kernel"]


def test_the_history_is_bounded() -> None:
    states = States()
    loop = Diagnosing(states, None, dict, lambda tgids: HostReading(), keep=3)
    states.now = {"urllc": {TARGET: "violated"}}
    for t in range(10):
        loop.on_snapshot(snapshot(t, 9.1))
    assert [d.time for d in loop.history("urllc")] == [7, 8, 9]


def test_a_violation_carries_its_evidence_file_and_the_capture_follows_the_episode(
    tmp_path: Path,
) -> None:
    frames, states = Frames(), States()
    keeper = EvidenceKeeper(frames, lambda: {"urllc": 2}, tmp_path)
    host = lambda tgids: HostReading()  # noqa: E731
    loop = Diagnosing(states, CountingProbe(), lambda: {}, host, tail=1, evidence=keeper)
    states.now = {"urllc": {TARGET: "met"}}
    loop.on_snapshot(snapshot(0, 1.0))
    frames.send(2, 3)
    assert frames.flagged == set() and frames.pending == []  # healthy: nothing copied

    states.now = {"urllc": {TARGET: "at risk"}}
    loop.on_snapshot(snapshot(1, 9.1))
    assert frames.flagged == {2}  # from the end of the first degraded interval
    frames.send(2, 4)
    opened = Violation("urllc", TARGET, 5.0, started_interval=2, started_at=2.0, worst=9.1)
    throughput = Violation("urllc", "min_throughput_mbps.uplink", 5.0, 2, 2.0, 0.1)
    states.violations = [opened, throughput]
    loop.on_snapshot(snapshot(2, 9.1))
    (file,) = loop.evidence_files("urllc")
    assert opened.evidence == str(file.path) and file.frames == 4
    assert throughput.evidence is None  # not a latency or loss target

    states.now = {"urllc": {TARGET: "met"}}
    frames.send(2, 2, first=4)
    loop.on_snapshot(snapshot(3, 1.0))  # the tail: still captured, the file grows
    assert frames.flagged == {2} and file.frames == 6
    loop.on_snapshot(snapshot(4, 1.0))
    assert frames.flagged == set()
    loop.close()
    assert frames.closed


def test_a_slice_is_diagnosed_from_the_functions_that_serve_it() -> None:
    """One UPF per slice: eMBB's UPF waiting behind a hog is not why URLLC
    is late; an unbound function serves every slice."""
    probe, states = CountingProbe(), States()  # its waits are watch index 0's
    host = lambda tgids: HostReading()  # noqa: E731
    bound = {812: "embb", 813: "urllc"}
    names = {812: "upf-embb", 813: "upf-urllc"}
    loop = Diagnosing(states, probe, lambda: dict(names), host, tail=1, bound=lambda: bound)
    for t, state, p99 in ((0, "met", 1.0), (1, "at risk", 9.1), (2, "violated", 9.1)):
        states.now = {"urllc": {TARGET: state}}
        loop.on_snapshot(snapshot(t, p99))
    found = loop.latest("urllc")
    assert found is not None and found.time == 2
    assert "run_queue_wait" not in [f.name for f in found.diagnosis.factors]
    assert "upf-embb" not in found.diagnosis.summary

    bound.clear()  # the same UPF now serves both slices
    names[814] = "upf-shared"  # a new process: the watch is looked up again
    loop.on_snapshot(snapshot(3, 9.1))
    latest = loop.latest("urllc")
    assert latest is not None and latest.time == 3
    top = latest.diagnosis.factors[0]
    assert top.name == "run_queue_wait" and top.evidence["function"] == "upf-embb (pid 812)"


def test_a_loss_seen_late_is_explained_by_the_drops_before_it() -> None:
    """Datagrams the UPF's socket refused at interval 2 count as lost when
    their transit stamps expire (2 s later, interval 4 here): the loss's
    diagnosis reads the kernel's drops over that look-back and names the
    socket, with every datagram it refused."""
    states = States()
    refused = {0: 0, 1: 0, 2: 3007}
    reads = [0]

    def host(tgids: list[int]) -> HostReading:
        count = refused.get(reads[0], 3007)
        reads[0] += 1
        return HostReading(udp={t: UdpCounters(0, count, count) for t in tgids})

    loop = Diagnosing(states, None, lambda: {812: "upf"}, host, tail=1)
    loss = "max_loss_ratio.transit.uplink"
    for t in range(5):
        urllc = SliceKpis(name="urllc", slice_id=2, snssai="2-000001")
        if t == 4:
            urllc.uplink.loss.transit_lost = 2990
            urllc.checks.append(Check("urllc", loss, 0.01, 0.75, False))
        states.now = {"urllc": {loss: "at risk" if t == 4 else "met"}}
        loop.on_snapshot(Snapshot(time=t, interval_s=1.0, slices={"urllc": urllc}))
    found = loop.latest("urllc")
    assert found is not None
    assert [(f.name, f.evidence) for f in found.diagnosis.factors] == [
        ("socket_overflow", {"packets": 3007})
    ]


def test_the_watched_functions_come_with_the_kernels_softirq_threads(tmp_path: Path) -> None:
    """The UPF found by its name, and every CPU's ksoftirqd beside it: the
    packet work the kernel defers to them waits on the same run queues."""
    for pid, comm, cmdline in (
        (812, "open5gs-upfd", b"/usr/bin/open5gs-upfd\0-c\0"),
        (10, "ksoftirqd/0", b""),
        (18, "ksoftirqd/1", b""),
        (77, "sshd", b"sshd\0"),
    ):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "comm").write_text(comm + "\n")
        (tmp_path / str(pid) / "cmdline").write_bytes(cmdline)
    watched = WatchedProcesses([WatchEntry(name="open5gs-upfd")], tmp_path)
    assert watched() == {812: "open5gs-upfd", 10: "ksoftirqd/0", 18: "ksoftirqd/1"}
