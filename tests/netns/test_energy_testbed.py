"""The energy estimator end to end: `sauron run` on the testbed with one
reference UPF per slice (the Open5GS layout), each watched by its process
name and bound to its slice, eMBB carrying three times URLLC's packets.

The ground truth of each slice's work is its UPF's CPU time as the kernel
accounts it (/proc/PID/task/*/schedstat, read beside the agent), plus its
share, by the packets the test sent, of the packet softirq time that ran
outside the UPFs (the gNB's and DN's sends): the joules of the two slices
must stand in the ratio of that work within 2 % (the issue asks 5 %), and
each UPF's measured time must match schedstat within 1 %. Every interval
must conserve energy (slices + unattributed = node), the figures must name
the power model and cycle source in use, and an energy-per-GB target the
slice cannot meet must open a violation."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from agent_process import REPO, agent_config, links_with_programs, next_interval, start_agent

from sauron.catalog import load_catalog
from sauron.commands.client import SauronClient
from sauron.testbed.bed import Testbed
from sauron.testbed.paced import OtherTraffic, send_paced
from sauron.testbed.sessions import SessionsFile, make_sessions

pytestmark = [pytest.mark.kernel, pytest.mark.netns]

INTERVAL_S = 1.0
URLLC_PPS = 400
EMBB_PPS = 3 * URLLC_PPS
TRAFFIC_S = 6.0
#: a target no slice can meet: joules per GB of a few hundred kB per second
UNMEETABLE_J_PER_GB = 1e-6
#: each slice's UPF, watched by its process name and bound to the slice
WATCH = [{"name": "upf-embb", "slice": "embb"}, {"name": "upf-urllc", "slice": "urllc"}]


def cpu_time_ns(pid: int) -> int:
    """The kernel scheduler's total run time of every thread of a process."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            total += int(f.read().split()[0])
    return total


def test_slice_joules_follow_the_measured_work_of_their_upfs(tmp_path: Path) -> None:
    doc = yaml.safe_load((REPO / "slices" / "default.yaml").read_text())
    for s in doc["slices"]:
        s["sla"] = {"max_energy_j_per_gb": UNMEETABLE_J_PER_GB} if s["name"] == "urllc" else {}
    catalog_path = tmp_path / "catalog.yaml"
    catalog_path.write_text(yaml.safe_dump(doc))
    catalog = load_catalog(catalog_path)
    sessions = SessionsFile(sessions=make_sessions(catalog, {"embb": 1, "urllc": 1}))
    ue = {s.slice: str(s.ue_ip) for s in sessions.sessions}

    with Testbed(catalog, sessions, tmp_path / "bed", echo_interval=5.0, upf_per_slice=True) as bed:
        pids = bed.upf_pids()
        assert set(pids) == {"upf-embb", "upf-urllc"}
        config = agent_config(
            tmp_path / "agent.yaml",
            bed.upf,
            catalog=str(catalog_path),
            interval_s=INTERVAL_S,
            sla={"window": 3, "open_bad": 2, "close_good": 2},
            energy={"watch": WATCH},
        )
        agent, url = start_agent(config)
        try:
            sent: dict[str, int] = {}

            async def observe() -> tuple[dict[str, int], object, list[object], object, str]:
                async with SauronClient(url) as api:
                    # the work is read the moment an interval ends, so the
                    # agent's window and the schedstat window are the same
                    await next_interval(api, INTERVAL_S)
                    first = await next_interval(api, INTERVAL_S)
                    work_before = {name: cpu_time_ns(pid) for name, pid in pids.items()}
                    stop = threading.Event()
                    plan = {ue["embb"]: EMBB_PPS, ue["urllc"]: URLLC_PPS}
                    sender = threading.Thread(target=send_paced, args=(bed, plan, stop, sent))
                    sender.start()
                    await asyncio.sleep(TRAFFIC_S)
                    stop.set()
                    sender.join()
                    await asyncio.sleep(INTERVAL_S)  # echoes drained
                    last = await next_interval(api, INTERVAL_S)
                    work = {n: cpu_time_ns(p) - work_before[n] for n, p in pids.items()}
                    window = await api.energy(since=first + 0.001, until=last)
                    series = (await api.slices()).slices
                    sla = await api.sla()
                    return work, window, series, sla, ""

            work, window, series, sla, _ = asyncio.run(observe())
            cli = subprocess.run(
                [sys.executable, "-m", "sauron", "energy", "--url", url],
                capture_output=True,
                text=True,
                cwd=REPO,
                timeout=30,
            )
        finally:
            agent.send_signal(signal.SIGTERM)
            out, _ = agent.communicate(timeout=20)
        assert agent.returncode == 0, out
        assert links_with_programs(bed.upf) == [], out
        bed.stop()

    from sauron.service.schemas import EnergyReport, SlaReport

    assert isinstance(window, EnergyReport) and isinstance(sla, SlaReport)
    node = window.node
    assert node is not None and window.available
    # the figures say how they were made, and it is what this machine offers
    assert node.method == "profile" and node.profile == "generic"
    assert node.cycle_source == "/proc/cpuinfo cpu MHz"
    assert any("no hardware cycle counter" in n for n in node.notes)
    assert any(n == "watched name upf-embb (slice embb): 1 found" for n in node.notes)
    assert any("sched_stat_runtime" in n for n in node.notes)
    assert any("steal time" in n for n in node.notes)

    embb, urllc = window.slices["embb"], window.slices["urllc"]
    hz = node.frequency_mhz * 1e6
    # each UPF's time is measured, not derived from packets: it is the
    # scheduler's own account (sched_stat_runtime), steal time left out. The
    # probe's earlier switch-to-switch timing ran up to 9 % over schedstat on
    # runs where the hypervisor stole CPU time (0.56 s of steal in a 6 s
    # window), more for the busier UPF: the 5 % joules-ratio misses.
    for name, e in (("upf-embb", embb), ("upf-urllc", urllc)):
        measured_ns = e.cycles_process / hz * 1e9
        assert measured_ns == pytest.approx(work[name], rel=0.01), (name, measured_ns, work)
    # the softirq time outside the UPFs that Sauron's packets made up (the
    # rest, the node's, is the other namespaces' traffic), shared by the
    # packets each slice sent
    shared_ns = (node.cycles_softirq - node.cycles_softirq_node) / hz * 1e9
    total_sent = sent[ue["embb"]] + sent[ue["urllc"]]
    truth = {s: work[f"upf-{s}"] + shared_ns * sent[ue[s]] / total_sent for s in ("embb", "urllc")}
    truth_ratio = truth["embb"] / truth["urllc"]
    joules_ratio = embb.joules / urllc.joules
    # the UPFs really did unequal work (3x the packets for eMBB; its UPF's
    # cost per packet falls when it reads more per wake-up, so the ratio
    # of their work is lower, 1.84 on one loaded CI run)
    assert 1.5 < truth_ratio < 4.5, truth
    print(f"joules ratio {joules_ratio:.3f}, truth {truth_ratio:.3f}")
    assert joules_ratio == pytest.approx(truth_ratio, rel=0.02), (work, shared_ns, embb, urllc)

    # conservation over the window: slices + unattributed = node
    total = sum(e.joules for e in window.slices.values()) + node.unattributed_joules
    assert total == pytest.approx(node.joules, rel=1e-9)
    assert node.attributed_joules <= node.joules
    # per-unit figures from the traffic that entered the UPF
    assert embb.packets > 0 and embb.joules_per_gb == pytest.approx(
        embb.joules / (embb.bytes / 1e9)
    )
    assert embb.microjoules_per_packet == pytest.approx(embb.joules * 1e6 / embb.packets)

    # every interval conserves too, and the slice documents carry energy
    for s in series:
        assert s.kpis is not None and s.kpis.energy is not None

    opened = [v for v in sla.events if v.target == "max_energy_j_per_gb"]
    assert opened and opened[0].slice == "urllc" and opened[0].worst > UNMEETABLE_J_PER_GB

    assert cli.returncode == 0, cli.stderr
    assert "power model: profile generic" in cli.stdout
    assert "cycles: on-CPU time from the kernel x /proc/cpuinfo cpu MHz" in cli.stdout
    assert "urllc" in cli.stdout and "unattributed" in cli.stdout


#: the other traffic on the node: UDP between two namespaces of their own
OTHER_PPS = 5000
#: how far one 7 s window's cost per packet of a slice strays from another's
#: on this 2-CPU machine with nothing else running (up to 22 % measured
#: between the two quiet windows of one run): what the comparison allows.
#: The other traffic's work charged to the slices is checked apart, exactly;
#: the cost per packet over many rounds, beside its noise floor, is
#: `make bench-energy-isolation`'s figure (docs/energy.md)
WINDOW_NOISE = 0.3


def test_other_traffic_on_the_node_leaves_the_slices_joules_alone(tmp_path: Path) -> None:
    """The same slice traffic three times: alone, beside other traffic at a
    known rate (5 000 UDP datagrams a second between two namespaces of their
    own), and alone again: the slices' joules per packet beside it stay
    what they were alone, before and after, within this machine's window
    noise (charging the node's whole softirq time to the slices, as before,
    gave them 37 % more), the other traffic's softirq time is the node's,
    and the node says how it split its softirq time and how many of the
    packets its softirqs received were Sauron's.

    The UPFs are not watched here: a watched UPF's time is its scheduler's
    account, which other traffic cannot leak into, and which varies run to
    run by up to a quarter at these rates (how many packets it reads per
    wake-up). The slices' packets' own softirq cost moves too, by up to 22 %
    from one 7 s window to the next on this machine, so the per-packet
    comparison allows WINDOW_NOISE, and the leak itself is checked directly:
    of the softirq time the other traffic added, the node keeps at least
    three quarters (the rest is the slices' own movement)."""
    catalog_path = REPO / "slices" / "default.yaml"
    catalog = load_catalog(catalog_path)
    sessions = SessionsFile(sessions=make_sessions(catalog, {"embb": 1, "urllc": 1}))
    ue = {s.slice: str(s.ue_ip) for s in sessions.sessions}
    plan = {ue["embb"]: EMBB_PPS, ue["urllc"]: URLLC_PPS}

    with (
        Testbed(catalog, sessions, tmp_path / "bed", echo_interval=5.0, upf_per_slice=True) as bed,
        OtherTraffic(OTHER_PPS) as other,
    ):
        config = agent_config(
            tmp_path / "agent.yaml",
            bed.upf,
            catalog=str(catalog_path),
            interval_s=INTERVAL_S,
            energy={"watch": []},
        )
        agent, url = start_agent(config)
        try:

            async def window(api: SauronClient) -> tuple[object, dict[str, int]]:
                """The slice traffic over whole intervals; their energy."""
                first = await next_interval(api, INTERVAL_S)
                stop, sent = threading.Event(), {}
                sender = threading.Thread(target=send_paced, args=(bed, plan, stop, sent))
                sender.start()
                await asyncio.sleep(TRAFFIC_S)
                stop.set()
                sender.join()
                await asyncio.sleep(INTERVAL_S)  # echoes drained
                last = await next_interval(api, INTERVAL_S)
                return await api.energy(since=first + 0.001, until=last), sent

            async def observe() -> list[tuple[Any, dict[str, int]]]:
                async with SauronClient(url) as api:
                    await next_interval(api, INTERVAL_S)
                    before = await window(api)
                    other.start()
                    await next_interval(api, INTERVAL_S)
                    beside = await window(api)
                    other.stop()
                    await next_interval(api, INTERVAL_S)
                    after = await window(api)
                    return [before, beside, after]

            (quiet, quiet_sent), (loaded, loaded_sent), (quiet_after, after_sent) = asyncio.run(
                observe()
            )
        finally:
            other.stop()
            agent.send_signal(signal.SIGTERM)
            out, _ = agent.communicate(timeout=20)
        assert agent.returncode == 0, out

    from sauron.service.schemas import EnergyReport

    assert isinstance(quiet, EnergyReport) and isinstance(loaded, EnergyReport)
    assert quiet.node is not None and loaded.node is not None
    seconds = loaded.interval_s
    # the other traffic really ran, and its packets are counted as the node's
    others = loaded.node.softirq_packets - loaded.node.softirq_packets_sauron
    assert others > 0.8 * OTHER_PPS * seconds, loaded.node
    assert loaded.node.cycles_softirq_node > quiet.node.cycles_softirq_node
    # the split is told: Sauron's links, others', no packet's; the slices'
    # part is what the node keeps not
    for node in (quiet.node, loaded.node):
        parts = (
            node.cycles_softirq_sauron_links
            + node.cycles_softirq_other_links
            + node.cycles_softirq_unowned
        )
        assert parts == pytest.approx(node.cycles_softirq)
        given = sum(
            e.cycles_softirq for e in (quiet if node is quiet.node else loaded).slices.values()
        )
        assert given + node.cycles_softirq_node == pytest.approx(node.cycles_softirq)
    print(
        f"softirq Mcycles quiet {quiet.node.cycles_softirq / 1e6:.1f} "
        f"(node {quiet.node.cycles_softirq_node / 1e6:.1f}), loaded "
        f"{loaded.node.cycles_softirq / 1e6:.1f} (node {loaded.node.cycles_softirq_node / 1e6:.1f})"
    )
    assert isinstance(quiet_after, EnergyReport)
    for name in ("embb", "urllc"):
        alone = [
            report.slices[name].joules / sent[ue[name]]
            for report, sent in ((quiet, quiet_sent), (quiet_after, after_sent))
        ]
        beside = loaded.slices[name].joules / loaded_sent[ue[name]]
        print(
            f"{name}: uJ/packet alone {alone[0] * 1e6:.2f} and {alone[1] * 1e6:.2f}, "
            f"beside other traffic {beside * 1e6:.2f}"
        )
        mean_alone = sum(alone) / len(alone)
        assert abs(beside - mean_alone) <= WINDOW_NOISE * mean_alone, (name, alone, beside)
    # the other traffic's own softirq time stays the node's: of what it
    # added to the node's softirq time, at least three quarters (the rest is
    # the slices' own window-to-window movement)
    added = (
        loaded.node.cycles_softirq
        - (quiet.node.cycles_softirq + quiet_after.node.cycles_softirq) / 2
    )
    kept = (
        loaded.node.cycles_softirq_node
        - (quiet.node.cycles_softirq_node + quiet_after.node.cycles_softirq_node) / 2
    )
    assert added > 0 and kept >= 0.75 * added, (added, kept)
