"""A diagnosis ranks the factors of a failing figure by their measured
contribution: a run-queue wait that makes up most of a transit percentile
comes first and names the task that held the CPU; loss is split by where
the packets were lost; a neighbour whose load rose is named. Readings are
built here as the probe and the kernel's counters give them."""

from __future__ import annotations

from sauron.abi import diagnosis_layout as dl
from sauron.abi.histogram import LATENCY, Histogram
from sauron.diagnosis.explain import Evidence, Failing, Losses, diagnose
from sauron.diagnosis.host_counters import CpuTimes, HostReading, LinkDrops, Softnet, UdpCounters
from sauron.diagnosis.probe import Culprit, DiagnosisReading

MS = 1_000_000


def waits(*values_ms: float) -> Histogram:
    h = Histogram(LATENCY)
    for v in values_ms:
        h.record(int(v * MS))
    return h


def test_a_run_queue_wait_behind_a_hog_comes_first_and_names_it() -> None:
    probe = DiagnosisReading(
        waits={
            (0, dl.WAIT_RUNQUEUE): waits(*[0.05] * 90, *[7.8] * 10),
            (0, dl.WAIT_FUTEX): waits(*[0.01] * 100),
        },
        tasks={0: (120, 300, 400)},
        culprits={0: [Culprit(4242, "stress-ng", 1, 75 * MS, 10), Culprit(0, "", 1, MS, 5)]},
    )
    ev = Evidence(functions={0: "open5gs-upfd (pid 812)"}, probe=probe)
    d = diagnose("urllc", Failing("transit_latency_ms.p99.uplink", 5.0, 9.1), ev)
    first = d.factors[0]
    assert first.name == "run_queue_wait"
    # the p99 of the waits lands in 7.8 ms's bucket: within its bucket error
    estimate = probe.waits[(0, dl.WAIT_RUNQUEUE)].percentile(0.99)
    assert estimate is not None
    assert abs(estimate.value / MS - 7.8) <= estimate.error / MS + 1e-9
    assert first.share == estimate.value / MS / 9.1
    assert first.evidence["held_by"] == {
        "comm": "stress-ng",
        "pid": 4242,
        "cpu": 1,
        "share_of_wait": round(75 * MS / probe.waits[(0, dl.WAIT_RUNQUEUE)].total, 3),
    }
    assert "behind stress-ng (pid 4242)" in d.summary and "CPU 1" in d.summary
    assert d.summary.startswith("urllc: transit_latency_ms p99 9.10 ms, of which run-queue wait")
    names = [f.name for f in d.factors]
    assert names.index("inside_upf") > 0 and names[-1] == "futex_wait"


def test_time_inside_the_upf_leads_when_no_wait_explains_the_figure() -> None:
    probe = DiagnosisReading(waits={(0, dl.WAIT_RUNQUEUE): waits(*[0.02] * 100)})
    d = diagnose(
        "urllc",
        Failing("transit_latency_ms.p50.downlink", 1.0, 20.0),
        Evidence(functions={0: "upf"}, probe=probe),
    )
    assert d.factors[0].name == "inside_upf" and d.factors[0].share > 0.99


def test_without_the_probe_the_diagnosis_says_what_it_could_not_measure() -> None:
    ev = Evidence(probe=None, probe_missing="no BTF on this kernel")
    d = diagnose("urllc", Failing("transit_latency_ms.p99.uplink", 5.0, 9.1), ev)
    assert d.factors == [] and d.summary.endswith("no factor measured")
    assert d.unmeasured == ["run-queue and futex waits: no BTF on this kernel"]


def test_loss_is_split_by_where_it_happened() -> None:
    host = HostReading(
        softnet=[Softnet(1000, 0, 3), Softnet(900, 10, 0)],
        udp={812: UdpCounters(5000, 190, 190)},
        links={(812, "ogstun"): LinkDrops(0, 0)},
    )
    ev = Evidence(host=host, losses=Losses(radio_side=0, inside_upf=0))
    d = diagnose("urllc", Failing("max_loss_ratio.transit.downlink", 0.001, 0.019), ev)
    assert [(f.name, round(f.share, 3)) for f in d.factors] == [
        ("socket_overflow", 0.95),
        ("backlog_drops", 0.05),
    ]
    assert d.summary.startswith("urllc: loss 1.90 %, of which 190 datagrams refused")


def test_a_neighbour_whose_load_rose_is_named() -> None:
    ev = Evidence(
        host=HostReading(udp={1: UdpCounters(0, 4, 4)}),
        throughput={"urllc": (1.0, 1.0), "embb": (480.0, 9.0), "mmtc": (0.2, 0.2)},
    )
    d = diagnose("urllc", Failing("max_loss_ratio.sequence.uplink", 0.001, 0.01), ev)
    assert d.neighbour == ("embb", 480.0, 9.0)
    assert d.summary.endswith("while embb carried 480 Mbit/s (before: 9)")
    steady = Evidence(throughput={"urllc": (1.0, 1.0), "embb": (480.0, 470.0)})
    assert (
        diagnose("urllc", Failing("max_loss_ratio.sequence.uplink", 0.1, 0.2), steady).neighbour
        is None
    )


def test_a_loss_is_charged_to_the_socket_that_dropped_it_earlier() -> None:
    """Datagrams refused by the full socket were stamped at the UPF's door:
    their stamps expire seconds later, when the interval's own counters
    have nothing left. The kernel's drops over the look-back explain them,
    and they are not charged to the UPF a second time."""
    ev = Evidence(
        host=HostReading(udp={812: UdpCounters(0, 0, 0)}),
        loss_host=HostReading(udp={812: UdpCounters(900, 3007, 3007)}),
        losses=Losses(radio_side=0, inside_upf=2990),
    )
    d = diagnose("urllc", Failing("max_loss_ratio.transit.uplink", 0.01, 0.75), ev)
    assert [(f.name, f.share, f.evidence) for f in d.factors] == [
        ("socket_overflow", 1.0, {"packets": 3007})
    ]
    # downlink, the socket's drops are not on the way in: the UPF keeps its own
    down = diagnose("urllc", Failing("max_loss_ratio.transit.downlink", 0.01, 0.75), ev)
    assert [(f.name, f.evidence["packets"]) for f in down.factors] == [
        ("socket_overflow", 3007),
        ("inside_upf", 2990),
    ]


def test_a_waits_total_is_in_its_evidence() -> None:
    probe = DiagnosisReading(waits={(0, dl.WAIT_RUNQUEUE): waits(*[4.0] * 10, *[0.1] * 90)})
    d = diagnose(
        "urllc",
        Failing("transit_latency_ms.p99.uplink", 3.0, 4.0),
        Evidence(functions={0: "upf"}, probe=probe),
    )
    wait = next(f for f in d.factors if f.name == "run_queue_wait")
    assert wait.evidence["total_ms"] == 49.0 and wait.evidence["waits"] == 100


def test_the_run_queue_wait_is_summed_over_each_activation() -> None:
    """A UPF preempted again and again while it works through its packets
    waits once per preemption: a late packet waited for all of them. Each
    wait is 3 ms, the packets' p99 is 9 ms: three waits in one activation
    make it, and the run-queue wait, summed per activation, comes first."""
    probe = DiagnosisReading(
        waits={
            (0, dl.WAIT_RUNQUEUE): waits(*[3.0] * 30, *[0.02] * 70),
            (0, dl.WAIT_ACTIVATION): waits(*[9.0] * 10, *[0.02] * 70),
        },
        tasks={0: (20, 80, 80)},
    )
    d = diagnose(
        "urllc",
        Failing("transit_latency_ms.p99.uplink", 3.0, 9.2),
        Evidence(functions={0: "upf"}, probe=probe),
    )
    top = d.factors[0]
    assert top.name == "run_queue_wait" and top.share > 0.9
    assert top.evidence["activations"] == 80 and top.evidence["waits"] == 100
    assert top.evidence["total_ms"] == 30 * 3.0 + 70 * 0.02
    assert top.figure.startswith("run-queue wait per activation p99 8.69 ms")  # its bucket
    # without the activation sums, one wait at the percentile is compared
    single = DiagnosisReading(waits={(0, dl.WAIT_RUNQUEUE): probe.waits[(0, dl.WAIT_RUNQUEUE)]})
    alone = diagnose(
        "urllc",
        Failing("transit_latency_ms.p99.uplink", 3.0, 9.2),
        Evidence(functions={0: "upf"}, probe=single),
    )
    assert alone.factors[0].name == "inside_upf"


def test_the_cpus_stolen_time_softirq_time_and_clock_are_factors() -> None:
    """Every CPU slowed down: a fifth of their time stolen by the
    hypervisor, softirqs up from 2 % to 32 %, the clock down a quarter.
    Each is ranked by the part of the CPUs' time it took; under 1 %, it is
    not named."""
    now = HostReading(
        cpu=[CpuTimes(100, 30, 20), CpuTimes(100, 34, 20)],
        softnet=[Softnet(1000, 0, 7), Softnet(500, 0, 2)],
        mhz=[1500.0, 1500.0],
    )
    before = HostReading(cpu=[CpuTimes(100, 2, 0), CpuTimes(100, 2, 0)], mhz=[2000.0, 2000.0])
    probe = DiagnosisReading(waits={(0, dl.WAIT_RUNQUEUE): waits(*[0.02] * 100)})
    ev = Evidence(functions={0: "upf"}, probe=probe, host=now, baseline_host=before)
    d = diagnose("urllc", Failing("transit_latency_ms.p99.uplink", 5.0, 9.1), ev)
    shares = {f.name: f.share for f in d.factors}
    assert shares["hypervisor_steal"] == 0.2
    assert abs(shares["softirq_time"] - 0.30) < 1e-9
    assert shares["cpu_frequency"] == 0.25
    softirq = next(f for f in d.factors if f.name == "softirq_time")
    assert softirq.evidence["squeezes"] == 9
    # a healthy host: none of them
    calm = HostReading(cpu=[CpuTimes(100, 2, 0)], mhz=[2000.0])
    ev = Evidence(functions={0: "upf"}, probe=probe, host=calm, baseline_host=calm)
    d = diagnose("urllc", Failing("transit_latency_ms.p99.uplink", 5.0, 9.1), ev)
    assert {f.name for f in d.factors} == {"run_queue_wait", "inside_upf"}
