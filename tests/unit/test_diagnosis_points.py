"""A diagnosis as the InfluxDB publisher writes it (`sauron_diagnosis`): one
point holding the diagnosis (its summary, what was not measured, the
neighbour), then one point per factor in rank order with its share, figure,
method and evidence, each tagged with the slice, its S-NSSAI and the
failing target; and the cursor that hands each diagnosis to the publisher
once. Diagnoses are made by sauron.diagnosis.explain from readings shaped
as the probe and the kernel's counters give them."""

from __future__ import annotations

from timeseries import parse_line, string_fields

from sauron.abi import diagnosis_layout as dl
from sauron.abi.histogram import LATENCY, Histogram
from sauron.diagnosis.cursor import DiagnosisCursor
from sauron.diagnosis.explain import (
    Diagnosed,
    Diagnosis,
    Evidence,
    Factor,
    Failing,
    Losses,
    diagnose,
)
from sauron.diagnosis.probe import Culprit, DiagnosisReading
from sauron.export.influx.points import DIAGNOSIS, diagnosis_points, time_ns

MS = 1_000_000
AT = 1_800_000_000.25


def waits(*values_ms: float) -> Histogram:
    h = Histogram(LATENCY)
    for v in values_ms:
        h.record(int(v * MS))
    return h


def latency_diagnosis() -> Diagnosis:
    """Run-queue waits behind a named hog, futex waits, and a neighbour
    whose load rose."""
    probe = DiagnosisReading(
        waits={
            (0, dl.WAIT_RUNQUEUE): waits(*[0.05] * 90, *[7.8] * 10),
            (0, dl.WAIT_FUTEX): waits(*[0.01] * 100),
        },
        tasks={0: (120, 300, 400)},
        culprits={0: [Culprit(4242, 'str"ess, ng', 1, 75 * MS, 10)]},
    )
    ev = Evidence(
        functions={0: "open5gs-upfd (pid 812)"},
        probe=probe,
        throughput={"urllc": (2.0, 2.0), "embb": (900.0, 100.0)},
    )
    return diagnose("urllc", Failing("transit_latency_ms.p99.uplink", 5.0, 9.1), ev)


def by_point(lines: list[str]) -> list[tuple[dict[str, str], dict[str, float], dict[str, str]]]:
    """(tags, numeric fields, string fields) of each line, in order."""
    out = []
    for text in lines:
        samples = parse_line(text)
        assert {s.measurement for s in samples} == {DIAGNOSIS}
        assert {s.time_ms for s in samples} == {time_ns(AT) // 1_000_000}
        numbers = {s.field: s.value for s in samples if s.value == s.value}
        out.append((dict(samples[0].tags), numbers, string_fields(text)))
    return out


def test_a_latency_diagnosis_is_a_head_point_and_one_point_per_factor_in_rank_order() -> None:
    d = latency_diagnosis()
    assert [f.name for f in d.factors] == ["run_queue_wait", "inside_upf", "futex_wait"]
    assert d.neighbour is not None
    points = by_point(diagnosis_points("upf-1", Diagnosed(AT, d), "1-000001"))
    assert len(points) == 1 + len(d.factors)

    tags, numbers, texts = points[0]
    where = {
        "node": "upf-1",
        "slice": "urllc",
        "sst": "1",
        "sd": "000001",
        "target": "transit_latency_ms.p99.uplink",
    }
    assert tags == where
    assert numbers == {
        "limit": 5.0,
        "value": 9.1,
        "factors": 3,
        "neighbour_mbps": 900.0,
        "neighbour_baseline_mbps": 100.0,
    }
    assert texts == {"summary": d.summary, "neighbour": "embb"}

    for rank, (factor, (tags, numbers, texts)) in enumerate(
        zip(d.factors, points[1:], strict=True), start=1
    ):
        assert tags == {**where, "factor": factor.name, "rank": str(rank)}
        assert numbers["share"] == factor.share
        assert (numbers["limit"], numbers["value"]) == (5.0, 9.1)
        assert texts["figure"] == factor.figure and texts["method"] == factor.method

    wait = d.factors[0]
    _, numbers, texts = points[1]
    # every number of the evidence, the task that held the CPU flattened
    held = wait.evidence["held_by"]
    assert isinstance(held, dict)
    assert numbers == {
        "share": wait.share,
        "limit": 5.0,
        "value": 9.1,
        "waits": wait.evidence["waits"],
        "mean_ms": wait.evidence["mean_ms"],
        "p99_ms": wait.evidence["p99_ms"],
        "total_ms": wait.evidence["total_ms"],
        "preemptions": 120,
        "held_by_pid": 4242,
        "held_by_cpu": 1,
        "held_by_share_of_wait": held["share_of_wait"],
    }
    # a name with a quote and a comma comes back as it was
    assert texts["held_by_comm"] == 'str"ess, ng'
    assert texts["function"] == "open5gs-upfd (pid 812)"
    _, inside, _ = points[2]
    assert inside["figure_ms"] == 9.1 and inside["longest_wait_ms"] == wait.evidence["p99_ms"]


def test_counts_are_integer_fields_and_ratios_float_ones() -> None:
    """A field keeps one type in InfluxDB: a count is always an integer, a
    share, limit or value always a float, even when it is a whole number."""
    d = diagnose(
        "urllc",
        Failing("max_loss_ratio.sequence.uplink", 0, 1),
        Evidence(losses=Losses(radio_side=4)),
    )
    head, factor = diagnosis_points("upf-1", Diagnosed(AT, d), "")
    assert ",limit=0,value=1,factors=1i" in head  # no "i": floats
    assert " share=1,figure=" in factor and ",packets=4i" in factor
    assert "sst=" not in head, "a slice without an S-NSSAI has no sst tag"


def test_a_diagnosis_that_measured_nothing_is_its_head_point_with_what_was_missing() -> None:
    ev = Evidence(probe=None, probe_missing="no BTF on this kernel")
    d = diagnose("urllc", Failing("transit_latency_ms.p99.uplink", 5.0, 9.1), ev)
    (point,) = by_point(diagnosis_points("upf-1", Diagnosed(AT, d), "1"))
    tags, numbers, texts = point
    assert tags["sst"] == "1" and "sd" not in tags and "factor" not in tags
    assert numbers == {"limit": 5.0, "value": 9.1, "factors": 0}
    assert texts == {
        "summary": "urllc: transit_latency_ms p99 9.10 ms: no factor measured",
        "unmeasured": "run-queue and futex waits: no BTF on this kernel",
    }


def test_evidence_never_shadows_the_points_own_fields() -> None:
    d = Diagnosis(
        "urllc",
        Failing("max_loss_ratio.sequence.uplink", 0.01, 0.5),
        [Factor("radio_side", 1.0, "4 lost", {"share": 7, "value": "x"}, "counted")],
        "urllc: loss",
    )
    _, (_, numbers, texts) = by_point(diagnosis_points("upf-1", Diagnosed(AT, d), ""))
    assert numbers["share"] == 1.0 and numbers["evidence_share"] == 7
    assert numbers["value"] == 0.5 and texts["evidence_value"] == "x"


def test_the_cursor_hands_each_diagnosis_out_once() -> None:
    history: dict[str, list[Diagnosed]] = {"urllc": [], "embb": []}

    def made(name: str, at: float) -> Diagnosed:
        d = Diagnosed(at, Diagnosis(name, Failing("max_loss_ratio", 0.1, 0.2), [], "s"))
        history[name].append(d)
        return d

    cursor = DiagnosisCursor(lambda name: history[name])
    assert cursor("urllc") == []
    # two targets failing in one interval: same time, both handed out
    first, second = made("urllc", 1.0), made("urllc", 1.0)
    assert cursor("urllc") == [first, second]
    assert cursor("urllc") == [] and cursor("embb") == []
    third = made("urllc", 2.0)
    other = made("embb", 2.0)
    assert cursor("urllc") == [third] and cursor("embb") == [other]
    # equal but not the same: a new diagnosis, handed out
    again = Diagnosed(third.time, third.diagnosis)
    history["urllc"].append(again)
    assert again == third and cursor("urllc") == [again]
    # a clock stepped back hides nothing
    early = made("urllc", 0.5)
    assert cursor("urllc") == [early]


def test_the_cursor_hands_out_what_a_bounded_history_still_holds() -> None:
    """The history keeps the newest few: when the last one handed out has
    fallen off, everything it still holds is newer."""
    kept: list[Diagnosed] = []
    cursor = DiagnosisCursor(lambda name: kept)
    made = [
        Diagnosed(float(n), Diagnosis("urllc", Failing("t", 1, 2), [], str(n))) for n in range(6)
    ]
    kept[:] = made[:2]
    assert cursor("urllc") == made[:2]
    kept[:] = made[3:6]  # made[1] fell off (and made[2] with it, never seen)
    assert cursor("urllc") == made[3:6]
    kept[:] = made[4:6]
    assert cursor("urllc") == []
