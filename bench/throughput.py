"""Throughput overhead on a veth pair between namespaces: frames per second
the UPF namespace's stack takes in with Sauron attached to its N3 end (as
the agent attaches it: XDP generic ingress, TC egress, the default catalog's
measuring settings) ÷ with nothing attached, and ÷ with empty programs of
the same types, conditions interleaved round by round.

The generator (bench/generator.py) runs pinned to one CPU; on a veth the
receiving stack runs in the sender's system call, so each figure is one
CPU sending and receiving at its limit. Its ceiling is its rate into the
same veth when the UPF end discards every frame in native XDP, before any
stack."""

from __future__ import annotations

import os

from bench.figures import Figure, figure
from bench.generator import FrameGenerator
from bench.n3_link import N3, N3Link, n3_link, udp_delivered, uplink_frames
from sauron.bpf.loader import BpfObject, DataPlane
from sauron.bpf.measurements import apply_settings, settings_for
from sauron.catalog import load_catalog
from sauron.config import InterfaceConfig
from sauron.interfaces import attach_interfaces
from sauron.netns import Attachments, inside
from sauron.rules import program_catalog

CONDITIONS = ("none", "empty", "sauron")


def _delivered_pps(link: N3Link, gen: FrameGenerator, seconds: float) -> tuple[float, float]:
    before = udp_delivered(link.upf)
    sent = gen.flood(seconds)
    return (udp_delivered(link.upf) - before) / sent.seconds, sent.pps


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
                with Attachments() as att:
                    if condition == "empty":
                        att.attach_xdp(link.upf, N3, empty.function("empty_xdp", "xdp"))
                        att.attach_tc_egress(link.upf, N3, empty.function("empty_tc", "tc"))
                    elif condition == "sauron":
                        attach_interfaces(
                            dp, [InterfaceConfig(name=N3, role="n3", netns=link.upf)], att
                        )
                    pps[condition].append(_delivered_pps(link, gen, seconds)[0])
            with Attachments() as att:
                att.attach_xdp(link.upf, N3, empty.function("discard_xdp", "xdp"), generic=False)
                ceiling.append(gen.flood(seconds).pps)
        gen.close()
    empty.close()
    dp.close()
    machine_note = "one CPU sends and receives (veth)"
    with_ratio = [s / n for s, n in zip(pps["sauron"], pps["none"], strict=True)]
    vs_empty = [s / e for s, e in zip(pps["sauron"], pps["empty"], strict=True)]
    return [
        figure(
            "veth_pps_without", pps["none"], "frames/s", what=f"nothing attached; {machine_note}"
        ),
        figure(
            "veth_pps_empty_programs",
            pps["empty"],
            "frames/s",
            what="empty XDP and TC programs attached",
        ),
        figure(
            "veth_pps_with_sauron",
            pps["sauron"],
            "frames/s",
            what="Sauron attached as the agent attaches it",
        ),
        figure(
            "veth_throughput_ratio",
            with_ratio,
            "ratio",
            goal=0.97,
            goal_is="at_least",
            what="with Sauron ÷ without, per round",
        ),
        figure(
            "veth_throughput_ratio_vs_empty",
            vs_empty,
            "ratio",
            what="with Sauron ÷ with empty programs",
        ),
        figure(
            "generator_ceiling_pps",
            ceiling,
            "frames/s",
            what="the generator into the same veth, UPF end discarding in native XDP",
        ),
    ]
