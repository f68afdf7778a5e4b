"""When the diagnosis probe is attached: from the first interval a slice's
latency or loss target is at risk or violated, until a tail of healthy
intervals after its last such one, so that a flapping degradation is one
episode and its recovery is seen too. Throughput and energy targets do not
trigger it: a slice carrying less than its floor is not late.

The trigger only decides; the agent's runtime attaches and detaches."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sauron.abi.kpis import LATENCY_KPIS

#: the SLA target names (their first part) whose failure starts a diagnosis
TRIGGERING = frozenset({kpi.sla_key for kpi in LATENCY_KPIS} | {"max_loss_ratio"})
FAILING = frozenset({"at risk", "violated"})


def degraded_targets(target_states: Mapping[str, str]) -> set[str]:
    """The latency and loss targets of a slice (SlaTracker.target_states)
    at risk or violated now."""
    return {
        target
        for target, state in target_states.items()
        if state in FAILING and target.split(".", 1)[0] in TRIGGERING
    }


@dataclass
class Episode:
    """One slice's degradation, from the interval it began."""

    slice_name: str
    began: int
    last_degraded: int
    #: the end of the interval it began in (unix s): when, for an operator
    began_at: float
    #: every triggering target that failed during it
    targets: set[str] = field(default_factory=set)


@dataclass
class Changes:
    began: list[Episode] = field(default_factory=list)
    ended: list[Episode] = field(default_factory=list)


class DiagnosisTrigger:
    """trigger.observe(interval, {slice: degraded targets}, at) each
    interval (`at`: the interval's end, unix s);
    `attached` says whether the probe should be on now."""

    def __init__(self, tail: int = 5) -> None:
        if tail < 0:
            raise ValueError("the tail is a number of intervals, 0 or more")
        self.tail = tail
        self.episodes: dict[str, Episode] = {}

    @property
    def attached(self) -> bool:
        return bool(self.episodes)

    def observe(self, interval: int, degraded: Mapping[str, set[str]], at: float) -> Changes:
        changes = Changes()
        for name, targets in degraded.items():
            if not targets:
                continue
            episode = self.episodes.get(name)
            if episode is None:
                episode = self.episodes[name] = Episode(name, interval, interval, at)
                changes.began.append(episode)
            episode.last_degraded = interval
            episode.targets |= targets
        for name, episode in list(self.episodes.items()):
            if interval - episode.last_degraded > self.tail:
                changes.ended.append(self.episodes.pop(name))
        return changes
