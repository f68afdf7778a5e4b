"""The demo's story: its phases, announced as they begin, and each SLA
violation explained from what the agent measured while it lasted.

A violation is one of three things: the one the demo causes on purpose
(eMBB's downlink under its UPF's rate limit), a consequence the demo's own
load explains with measured figures (the rate limiter's drops; another
slice's figures while eMBB's bulk downloads kept the host's CPUs busy), or
unexplained, which the demo says in those words: a newcomer must never be
left to guess whether the tool or the network is wrong."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sauron.commands.views import clock, with_unit
from sauron.kpi.records import Snapshot
from sauron.kpi.sla import Violation

#: the slice whose load the story changes
BULK_SLICE = "embb"
#: the rate limit of the last phase, under eMBB's 1 Mbit/s downlink minimum
LIMIT_MBPS = 0.5
#: eMBB traffic above this is bulk, not the healthy phase's streaming: load
#: that can crowd the host (two streaming UEs carry about 8 Mbit/s)
CROWDING_MBPS = 20.0

#: the intervals, from a violation's first failed one, in which its cause
#: must show (a cause that came later did not open it)
BEGINNING = 2

#: the energy target the rate limit breaks too: a UPF's work per byte
#: grows when few bytes carry it
ENERGY_TARGET = "max_energy_j_per_gb"

HEALTHY, LOAD, LIMIT, DELAY = "healthy", "eMBB load", "rate limit", "URLLC delay"
#: the slice whose UPF the last phase slows down, and by how much: above
#: its SLA's 5 ms transit p99
DELAYED_SLICE = "urllc"
DELAY_MS = 8.0


@dataclass(frozen=True)
class Phase:
    name: str
    #: the fraction of the run at which it begins
    starts_at: float
    announcement: str


PHASES = (
    Phase(
        HEALTHY,
        0.0,
        "every slice as it should be: eMBB's UEs stream video, URLLC's send every 10 ms, "
        "mMTC's 40 sensors report once a second; one UPF process per slice, as Open5GS "
        "deployments run them",
    ),
    Phase(
        LOAD,
        0.15,
        "eMBB's UEs now download in bulk, as fast as their UPF carries them: the other "
        "slices' UPFs share the host's CPUs with it",
    ),
    Phase(
        LIMIT,
        0.4,
        f"eMBB's UPF now rate-limits eMBB to {LIMIT_MBPS:g} Mbit/s, under the 1 Mbit/s "
        "downlink its SLA asks for: a violation on purpose",
    ),
    Phase(
        DELAY,
        0.65,
        f"URLLC's UPF now holds each packet {DELAY_MS:g} ms before it forwards it, beyond "
        "the 5 ms transit p99 its SLA asks for: a violation on purpose, which the agent "
        "diagnoses as time inside the UPF and records as a pcapng",
    ),
)


@dataclass
class Timeline:
    """The phases that have begun, with the moment each began (unix s)."""

    begun: list[tuple[Phase, float]]

    def phase_at(self, at: float) -> Phase | None:
        current = None
        for phase, since in self.begun:
            if since <= at:
                current = phase
        return current

    def began(self, name: str) -> float | None:
        return next((since for phase, since in self.begun if phase.name == name), None)


Kind = Literal["on purpose", "explained", "unexplained"]


@dataclass(frozen=True)
class Explanation:
    kind: Kind
    words: str


def during(violation: Violation, snapshots: Sequence[Snapshot]) -> list[Snapshot]:
    """The intervals a violation covers: from its first failed interval to
    the one that closed it (or the last one while it is open)."""
    end = violation.ended_at if violation.ended_at is not None else float("inf")
    return [s for s in snapshots if violation.started_at <= s.time <= end]


def _direction(target: str) -> str | None:
    last = target.rsplit(".", 1)[-1]
    return last if last in ("uplink", "downlink") else None


def _crowding(slice_name: str, intervals: Sequence[Snapshot]) -> str | None:
    """eMBB's peak throughput over `intervals` and what the host's CPUs did
    meanwhile, in words; None when eMBB carried no bulk load then."""
    peak = max(
        (
            s.slices[BULK_SLICE].downlink.mbps + s.slices[BULK_SLICE].uplink.mbps
            for s in intervals
            if BULK_SLICE in s.slices
        ),
        default=0.0,
    )
    if peak < CROWDING_MBPS:
        return None
    words = f"while eMBB carried up to {peak:.0f} Mbit/s through the same host"
    busiest = max(
        (s for s in intervals if s.energy is not None),
        key=lambda s: s.energy.busy_ratio if s.energy is not None else 0.0,
        default=None,
    )
    if busiest is not None and busiest.energy is not None:
        node = busiest.energy
        bulk = busiest.slices[BULK_SLICE].energy
        mine = busiest.slices[slice_name].energy
        words += f", whose {node.cpus} CPUs were {node.busy_ratio:.0%} busy"
        if bulk is not None and mine is not None and node.busy_cycles > 0:
            share = (bulk.cycles_softirq + bulk.cycles_process) / node.busy_cycles
            own = (mine.cycles_softirq + mine.cycles_process) / node.busy_cycles
            words += f", {share:.0%} of that for eMBB's packets and UPF against {own:.0%} for {slice_name}'s"
    return words


def explain(violation: Violation, snapshots: Sequence[Snapshot], timeline: Timeline) -> Explanation:
    """Why the demo saw `violation`, from the snapshots it covers."""
    intervals = during(violation, snapshots)
    limited_from = timeline.began(LIMIT)
    limited = limited_from is not None and violation.started_at >= limited_from
    figure = f"{with_unit(violation.target, violation.worst)} at worst"
    if violation.slice_name == BULK_SLICE and limited:
        if violation.target == "min_throughput_mbps.downlink":
            return Explanation(
                "on purpose",
                f"eMBB's UPF limits it to {LIMIT_MBPS:g} Mbit/s since {clock(limited_from)}: "
                f"its downlink carried {figure}, under the SLA's "
                f"{with_unit(violation.target, violation.limit)}",
            )
        direction = _direction(violation.target)
        if violation.target.startswith("max_loss_ratio") and direction is not None:
            dropped = sum(getattr(s.slices[BULK_SLICE], direction).upf_drops for s in intervals)
            if dropped:
                return Explanation(
                    "explained",
                    f"the rate limit's own drops: eMBB's UPF dropped {dropped} of its "
                    f"{direction} packets (they entered the UPF and never left) to hold it to "
                    f"{LIMIT_MBPS:g} Mbit/s; loss {figure}",
                )
    delayed_from = timeline.began(DELAY)
    if (
        violation.slice_name == DELAYED_SLICE
        and violation.target.startswith("transit_latency_ms.")
        and delayed_from is not None
        and violation.started_at >= delayed_from
    ):
        return Explanation(
            "on purpose",
            f"URLLC's UPF holds each packet {DELAY_MS:g} ms since {clock(delayed_from)}: "
            f"its transit time reached {figure}, over the SLA's "
            f"{with_unit(violation.target, violation.limit)}",
        )
    if violation.slice_name == BULK_SLICE and limited and violation.target == ENERGY_TARGET:
        measured = [s.slices[BULK_SLICE] for s in intervals if s.slices[BULK_SLICE].energy]
        if measured:
            watts = sum(k.energy.watts for k in measured if k.energy) / len(measured)
            mbps = sum(k.downlink.mbps + k.uplink.mbps for k in measured) / len(measured)
            return Explanation(
                "explained",
                f"the rate limit's consequence: eMBB's UPF and packets still drew {watts:.2f} W "
                f"while carrying {mbps:.2f} Mbit/s, so each GB cost {figure}",
            )
    if violation.slice_name != BULK_SLICE:
        # the load must be there when the failing began, not only later
        crowding = _crowding(violation.slice_name, intervals[:BEGINNING])
        if crowding is not None:
            return Explanation(
                "explained",
                f"a noisy neighbour: {violation.target} reached {figure} {crowding}",
            )
    phase = timeline.phase_at(violation.started_at)
    return Explanation(
        "unexplained",
        f"no phase of the demo explains it: {violation.target} reached {figure} "
        f"from {clock(violation.started_at)}, in the {phase.name if phase else 'first'} phase",
    )
