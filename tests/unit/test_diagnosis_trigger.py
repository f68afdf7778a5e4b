"""When the diagnosis probe is on: from the first interval a slice's latency
or loss target fails until a tail of healthy intervals after its last
failure; throughput and energy targets never turn it on."""

from __future__ import annotations

import pytest

from sauron.diagnosis.trigger import DiagnosisTrigger, degraded_targets


def test_only_latency_and_loss_targets_at_risk_or_violated_trigger() -> None:
    states = {
        "transit_latency_ms.p99.uplink": "at risk",
        "max_loss_ratio.sequence.downlink": "violated",
        "ran_rtt_ms.p50.uplink": "met",
        "min_throughput_mbps.downlink": "violated",
        "max_energy_j_per_gb": "violated",
    }
    assert degraded_targets(states) == {
        "transit_latency_ms.p99.uplink",
        "max_loss_ratio.sequence.downlink",
    }


def test_an_episode_lasts_through_flapping_and_ends_after_the_tail() -> None:
    trigger = DiagnosisTrigger(tail=2)
    late = {"urllc": {"transit_latency_ms.p99.uplink"}}
    healthy: dict[str, set[str]] = {"urllc": set()}
    assert not trigger.observe(0, healthy, 0.0).began and not trigger.attached
    began = trigger.observe(1, late, 100.0).began
    assert [e.slice_name for e in began] == ["urllc"] and trigger.attached
    assert trigger.observe(2, healthy, 200.0).ended == []
    assert trigger.observe(3, late, 300.0).began == []  # the same episode, flapping
    assert (
        trigger.observe(4, healthy, 400.0).ended == []
        and trigger.observe(5, healthy, 500.0).ended == []
    )
    (ended,) = trigger.observe(6, healthy, 600.0).ended
    assert (ended.began, ended.last_degraded, ended.began_at) == (1, 3, 100.0)
    assert not trigger.attached


def test_each_slice_has_its_own_episode() -> None:
    trigger = DiagnosisTrigger(tail=0)
    trigger.observe(0, {"urllc": {"max_loss_ratio.transit.uplink"}}, 0.0)
    trigger.observe(1, {"embb": {"transit_latency_ms.p50.downlink"}, "urllc": set()}, 100.0)
    assert set(trigger.episodes) == {"embb"}
    assert trigger.episodes["embb"].targets == {"transit_latency_ms.p50.downlink"}


def test_a_negative_tail_is_refused() -> None:
    with pytest.raises(ValueError, match="0 or more"):
        DiagnosisTrigger(tail=-1)
