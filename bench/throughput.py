"""Throughput overhead on a veth pair between namespaces: frames per second
the UPF namespace's stack takes in with Sauron attached to its N3 end (as
the agent attaches it: ingress auto, TC egress, the default catalog's
measuring settings) ÷ with nothing attached, and ÷ with empty programs on
the same hooks; and the same for every ingress hook (TC, generic and native
XDP), empty and with Sauron, conditions interleaved round by round. The
ranking is what `auto` follows (sauron.bpf.ingress_hooks).

The generator (bench/generator.py) runs pinned to one CPU; on a veth the
receiving stack runs in the sender's system call, so each figure is one
CPU sending and receiving at its limit. Its ceiling is its rate into the
same veth when the UPF end discards every frame in native XDP, before any
stack."""

from __future__ import annotations

import os
from typing import Any

from bench.figures import Figure, figure
from bench.generator import FrameGenerator
from bench.n3_link import N3, N3Link, n3_link, udp_delivered, uplink_frames
from sauron.agent.config import InterfaceConfig
from sauron.agent.interfaces import attach_interfaces, attach_on_hook
from sauron.bpf import ingress_hooks
from sauron.bpf.links import Links
from sauron.bpf.loader import BpfObject, DataPlane
from sauron.bpf.measurements import apply_settings, settings_for
from sauron.bpf.rules import program_catalog
from sauron.catalog import load_catalog
from sauron.host.netns import inside

#: every ingress hook the agent offers; egress is TC in all of them
MODES = ingress_hooks.HOOKS
CONDITIONS = ("none", *(f"empty {m}" for m in MODES), *(f"sauron {m}" for m in MODES))


def _delivered_pps(link: N3Link, gen: FrameGenerator, seconds: float) -> tuple[float, float]:
    before = udp_delivered(link.upf)
    sent = gen.flood(seconds)
    return (udp_delivered(link.upf) - before) / sent.seconds, sent.pps


def _attach_empty(att: Links, ns: str, empty: BpfObject, mode: str) -> None:
    attach_on_hook(att, ns, N3, mode, int(empty_program(empty, mode).fd))
    att.attach_tcx(ns, N3, int(empty.function("empty_tc", "tc").fd), "egress")


def empty_program(empty: BpfObject, hook: str) -> Any:
    """empty_xdp.c's program for a receiving-side hook."""
    program_type = ingress_hooks.program_type(hook)
    return empty.function(f"empty_{program_type}", program_type)


def run(quick: bool = False) -> list[Figure]:
    rounds, seconds = (1, 0.3) if quick else (7, 2.0)
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    catalog = load_catalog()
    dp = DataPlane()
    program_catalog(dp, catalog)
    apply_settings(dp, settings_for(catalog))
    empty = BpfObject(["empty_xdp.c"])
    pps: dict[str, list[float]] = {c: [] for c in CONDITIONS}
    ceiling: list[float] = []
    frames = [f for _, _, f in uplink_frames(300)]
    with n3_link() as link:
        with inside(link.gnb):
            gen = FrameGenerator("gnb0", frames)
        gen.flood(seconds)  # warm-up: ARP-free path, caches, page faults
        for _ in range(rounds):
            for condition in CONDITIONS:
                with Links() as att:
                    kind, _, mode = condition.partition(" ")
                    if kind == "empty":
                        _attach_empty(att, link.upf, empty, mode)
                    elif kind == "sauron":
                        itf = InterfaceConfig(name=N3, role="n3", netns=link.upf, ingress=mode)
                        attach_interfaces(dp, [itf], att)
                    pps[condition].append(_delivered_pps(link, gen, seconds)[0])
            with Links() as att:
                discard = int(empty.function("discard_xdp", "xdp").fd)
                att.attach_xdp(link.upf, N3, discard, generic=False)
                ceiling.append(gen.flood(seconds).pps)
        gen.close()
    empty.close()
    dp.close()
    return _figures(pps, ceiling)


def _ratios(over: list[float], under: list[float]) -> list[float]:
    return [a / b for a, b in zip(over, under, strict=True)]


def _figures(pps: dict[str, list[float]], ceiling: list[float]) -> list[Figure]:
    machine_note = "one CPU sends and receives (veth)"
    auto = ingress_hooks.candidates("auto", "veth")[0]
    none = pps["none"]
    out = [
        figure("veth_pps_without", none, "frames/s", what=f"nothing attached; {machine_note}"),
        figure(
            "veth_pps_empty_programs",
            pps[f"empty {auto}"],
            "frames/s",
            what=f"empty programs on the hooks auto takes on a veth ({auto} ingress, TC egress)",
        ),
        figure(
            "veth_pps_with_sauron",
            pps[f"sauron {auto}"],
            "frames/s",
            what=f"Sauron attached as the agent attaches it (ingress auto: {auto})",
        ),
        figure(
            "veth_throughput_ratio",
            _ratios(pps[f"sauron {auto}"], none),
            "ratio",
            goal=0.97,
            goal_is="at_least",
            what=f"with Sauron ÷ without, per round, ingress auto ({auto})",
        ),
        figure(
            "veth_throughput_ratio_vs_empty",
            _ratios(pps[f"sauron {auto}"], pps[f"empty {auto}"]),
            "ratio",
            what="with Sauron ÷ with empty programs on the same hooks",
        ),
    ]
    medians = {}
    for mode in MODES:
        key = mode.replace("-", "_")
        empty_ratio = figure(
            f"veth_empty_ratio_{key}",
            _ratios(pps[f"empty {mode}"], none),
            "ratio",
            what=f"empty programs, {mode} ingress and TC egress, ÷ nothing attached",
        )
        full_ratio = figure(
            f"veth_throughput_ratio_{key}",
            _ratios(pps[f"sauron {mode}"], none),
            "ratio",
            what=f"Sauron with {mode} ingress ÷ nothing attached",
        )
        medians[mode] = full_ratio.value
        out += [empty_ratio, full_ratio]
    cheapest = max(medians, key=lambda m: medians[m])
    out.append(
        figure(
            "veth_auto_is_cheapest",
            [1.0 if cheapest == auto else 0.0],
            "bool",
            goal=1.0,
            goal_is="at_least",
            what=f"auto's measured table (ingress_hooks.MEASURED_CHEAPEST) picks {auto}; "
            f"this run's cheapest with Sauron: {cheapest}",
        )
    )
    out.append(
        figure(
            "generator_ceiling_pps",
            ceiling,
            "frames/s",
            what="the generator into the same veth, UPF end discarding in native XDP",
        )
    )
    return out
