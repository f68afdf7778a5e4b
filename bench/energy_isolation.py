"""Whether other traffic on the node changes what a slice costs per packet.

The testbed with one UPF per slice (eMBB three times URLLC's packets: the
paced UE traffic of tests/test_energy_testbed.py) runs under `sauron run`
without a pause, while other traffic (UDP between two namespaces of its own,
5 000 datagrams a second by default, as in that test) is switched on and off
in rounds of a few agent intervals:

    Q L Q S Q S Q L Q ... Q

Q is quiet (the slices alone), L loaded (beside the other traffic) and S a
sham: alone again, measured exactly as L is. Each pair of L and S comes in
a random order (seeded), so that nothing periodic in the run lines up with
one of them. Each L and S round's joules per packet of each slice (the
agent's own figure, over the packets that entered the UPF) is compared with
the mean of the two quiet rounds either side of it: the L rounds give what
the other traffic does to a slice's figure, the S rounds the noise floor of
that same comparison. The first interval of every round, in which the
switch falls, is left out. Each L round also gives the share of the softirq
time the other traffic added that the node keeps for itself (the rest went
to the slices).

A round counts only if it ran as meant: in an L round the other traffic's
sender sent at least 80 % of its rate; in a Q or S round it sent nothing;
and in every round the node received no more foreign packets (not Sauron's,
not the other traffic's) than a fifth of the other traffic's rate above the
quiet rounds' median: more means someone else's traffic on the machine.
A comparison with a round that did not count is left out, and said so.

    python -m bench.energy_isolation [--pairs 12] [--round-intervals 4] [--interval 0.5]
                                     [--other-pps 5000] [--watch-upfs] [--seed 1]

Figures: printed, and written to bench/energy_isolation_results.json;
every round's, per CPU too, to bench/energy_isolation_rounds.json.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import datetime
import json
import os
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.figures import machine
from sauron.abi import energy_layout
from sauron.bpf import libbpf
from sauron.catalog import load_catalog
from sauron.commands.client import SauronClient
from sauron.energy.model import NODE_WORK_FIELDS
from sauron.energy.probe import read_per_cpu
from sauron.service.schemas import EnergyReport
from sauron.testbed.bed import Testbed
from sauron.testbed.paced import OtherTraffic, send_paced
from sauron.testbed.sessions import SessionsFile, make_sessions

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "support"))
from agent_process import agent_config, next_interval, start_agent, stop_agent  # noqa: E402

RESULTS = Path(__file__).with_name("energy_isolation_results.json")
#: every round's figures (.gitignore keeps them out of the repository)
ROUNDS = Path(__file__).with_name("energy_isolation_rounds.json")
#: the issue's goal: a slice's joules per packet beside heavy unrelated
#: traffic within this much of its joules per packet alone
GOAL = 0.05
SLICES = ("embb", "urllc")
URLLC_PPS = 400
EMBB_PPS = 3 * URLLC_PPS
#: an L round: the other traffic sent at least this share of its rate
LOADED_AT_LEAST = 0.8
#: foreign packets a round may hold, as a share of the other traffic's rate
FOREIGN_AT_MOST = 0.2
#: the node's figures each round keeps, per second
NODE_FIELDS = NODE_WORK_FIELDS

#: the probe's per-CPU totals each round keeps
CPU_FIELDS = (
    "idle_ns",
    "net_rx_ns",
    "net_tx_ns",
    "net_rx_runs",
    "sauron_rx_ns",
    "other_rx_ns",
    "sauron_rx_packets",
    "other_rx_packets",
)


@dataclass
class Round:
    """One round's figures: `kind` is quiet, loaded or sham."""

    kind: str
    seconds: float
    #: slice -> the agent's figures over the round
    joules: dict[str, float]
    packets: dict[str, int]
    cycles_softirq: dict[str, float]
    cycles_process: dict[str, float]
    #: NODE_FIELDS, per second
    node: dict[str, float] = field(default_factory=dict)
    busy_ratio: float = 0.0
    #: the other traffic's datagrams a second, counted by its sending link
    other_sent_per_s: float = 0.0
    #: per CPU, the agent's probe's own totals over the round, per second
    #: (CPU_FIELDS; raw: steal not taken out)
    per_cpu: list[dict[str, float]] = field(default_factory=list)
    #: whether the round ran as meant (see the module's text), and if not why
    counted: bool = True
    why_not: str = ""

    def uj_per_packet(self, name: str) -> float:
        return self.joules[name] * 1e6 / self.packets[name] if self.packets[name] else float("nan")

    @property
    def slice_packets(self) -> int:
        return sum(self.packets.values())

    @property
    def other_received_per_s(self) -> float:
        """Packets a second the node received on links not Sauron's."""
        return self.node["softirq_packets"] - self.node["softirq_packets_sauron"]

    def per_packet(self, per_s: float) -> float:
        """A figure per second, over the round, per packet of the slices."""
        return per_s * self.seconds / self.slice_packets if self.slice_packets else float("nan")


def order(pairs: int, seed: int) -> list[str]:
    """Q X Q Y Q ... Q: each pair of a loaded and a sham round in a random
    order, every one between two quiet rounds."""
    rng = random.Random(seed)
    kinds = ["quiet"]
    for _ in range(pairs):
        for kind in rng.sample(["loaded", "sham"], 2):
            kinds += [kind, "quiet"]
    return kinds


def check_rounds(rounds: Sequence[Round], other_pps: float) -> None:
    """Marks the rounds that did not run as meant (see the module's text)."""
    quiet = [r.other_received_per_s - r.other_sent_per_s for r in rounds if r.kind == "quiet"]
    baseline = statistics.median(quiet) if quiet else 0.0
    for r in rounds:
        foreign = r.other_received_per_s - r.other_sent_per_s - baseline
        if r.kind == "loaded":
            off = r.other_sent_per_s < LOADED_AT_LEAST * other_pps
        else:
            off = r.other_sent_per_s > 0.01 * other_pps
        if off:
            r.counted, r.why_not = False, f"other traffic {r.other_sent_per_s:.0f}/s"
        elif foreign > FOREIGN_AT_MOST * other_pps:
            r.counted, r.why_not = False, f"{foreign:.0f} foreign packets/s"


def against_neighbours(
    rounds: Sequence[Round], kind: str, value: Callable[[Round], float]
) -> list[float]:
    """For every round of `kind` that counted between two quiet rounds that
    counted: its value over their mean, minus one (none where it is zero)."""
    out = []
    for i, r in enumerate(rounds):
        if r.kind != kind:
            continue
        before, after = rounds[i - 1], rounds[i + 1]
        if before.kind != "quiet" or after.kind != "quiet":
            raise ValueError(f"round {i} ({kind}) is not between two quiet rounds")
        if not (r.counted and before.counted and after.counted):
            continue
        alone = (value(before) + value(after)) / 2
        if alone:
            out.append(value(r) / alone - 1)
    return out


def added_and_kept(rounds: Sequence[Round]) -> list[tuple[float, float]]:
    """For every loaded round compared: (the softirq cycles a second the
    other traffic added to the node's, of them the part the node kept),
    each against the mean of the quiet rounds either side."""
    out = []
    for i, r in enumerate(rounds):
        if r.kind != "loaded":
            continue
        before, after = rounds[i - 1], rounds[i + 1]
        if not (r.counted and before.counted and after.counted):
            continue

        def grew(name: str, r: Round = r, before: Round = before, after: Round = after) -> float:
            return r.node[name] - (before.node[name] + after.node[name]) / 2

        out.append((grew("cycles_softirq"), grew("cycles_softirq_node")))
    return out


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median, quartiles, extremes and count."""
    if not values:
        return {"n": 0}
    q1, _, q3 = (
        statistics.quantiles(values, n=4, method="inclusive")
        if len(values) > 1
        else (values[0],) * 3
    )
    return {
        "median": statistics.median(values),
        "q1": q1,
        "q3": q3,
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def given_per_s(r: Round) -> float:
    """The softirq cycles a second the slices were given."""
    return sum(r.cycles_softirq.values()) / r.seconds


#: where a change of the slices' cost per packet comes from: the node's
#: figures per packet of the slices (the softirq split) and per second,
#: each compared like the slices' joules
WHERE: dict[str, Callable[[Round], float]] = {
    "slices_softirq_per_packet": lambda r: r.per_packet(given_per_s(r)),
    "of_it_sauron_links_per_packet": lambda r: r.per_packet(r.node["cycles_softirq_sauron_links"]),
    "of_it_unowned_share_per_packet": lambda r: r.per_packet(
        given_per_s(r) - r.node["cycles_softirq_sauron_links"]
    ),
    "slices_process_per_packet": lambda r: r.per_packet(sum(r.cycles_process.values()) / r.seconds),
    "sauron_receptions_per_packet": lambda r: r.per_packet(r.node["softirq_packets_sauron"]),
    "node_unowned_per_s": lambda r: r.node["cycles_softirq_unowned"],
    "node_other_links_per_s": lambda r: r.node["cycles_softirq_other_links"],
    "node_busy_cycles_per_s": lambda r: r.node["busy_cycles"],
}


def _on_cpu(r: Round, cpu: int, name: str) -> float:
    return r.per_cpu[cpu][name] if cpu < len(r.per_cpu) else 0.0


#: the same per CPU, from the agent's probe's own totals
CPU_WHERE: dict[str, Callable[[Round, int], float]] = {
    "sauron_links_ns_per_their_packet": lambda r, c: (
        _on_cpu(r, c, "sauron_rx_ns") / _on_cpu(r, c, "sauron_rx_packets")
        if _on_cpu(r, c, "sauron_rx_packets")
        else 0.0
    ),
    "sauron_links_packets_per_s": lambda r, c: _on_cpu(r, c, "sauron_rx_packets"),
    "sauron_links_ns_per_s": lambda r, c: _on_cpu(r, c, "sauron_rx_ns"),
    "other_links_ns_per_s": lambda r, c: _on_cpu(r, c, "other_rx_ns"),
    # no packet's, and (with watched processes) the softirqs run in their
    # context, which the probe does not split
    "unsplit_ns_per_s": lambda r, c: (
        _on_cpu(r, c, "net_rx_ns")
        + _on_cpu(r, c, "net_tx_ns")
        - _on_cpu(r, c, "sauron_rx_ns")
        - _on_cpu(r, c, "other_rx_ns")
    ),
    "net_rx_runs_per_s": lambda r, c: _on_cpu(r, c, "net_rx_runs"),
    "busy_share": lambda r, c: 1 - _on_cpu(r, c, "idle_ns") / 1e9,
}


def analyse(rounds: Sequence[Round]) -> dict[str, Any]:
    """The figures of a run: per slice, the loaded rounds' and the sham
    rounds' difference from their quiet neighbours; the node's kept share."""
    slices: dict[str, Any] = {}
    for name in SLICES:

        def uj(r: Round, name: str = name) -> float:
            return r.uj_per_packet(name)

        beside = summary(against_neighbours(rounds, "loaded", uj))
        slices[name] = {
            "uj_per_packet_quiet": summary(
                [uj(r) for r in rounds if r.kind == "quiet" and r.counted]
            ),
            "beside_other_traffic": beside,
            "alone_again_noise_floor": summary(against_neighbours(rounds, "sham", uj)),
            "met": abs(beside["median"]) <= GOAL if beside["n"] else None,
        }
    shares = [kept / added for added, kept in added_and_kept(rounds) if added > 0]
    where = {
        name: {
            "beside_other_traffic": summary(against_neighbours(rounds, "loaded", value)),
            "alone_again_noise_floor": summary(against_neighbours(rounds, "sham", value)),
        }
        for name, value in WHERE.items()
    }
    cpus = max((len(r.per_cpu) for r in rounds), default=0)
    per_cpu = [
        {
            name: {
                "quiet_median": statistics.median(
                    [value(r, cpu) for r in rounds if r.kind == "quiet" and r.counted] or [0.0]
                ),
                "beside_other_traffic": summary(
                    against_neighbours(rounds, "loaded", lambda r, v=value, c=cpu: v(r, c))
                ),
                "alone_again_noise_floor": summary(
                    against_neighbours(rounds, "sham", lambda r, v=value, c=cpu: v(r, c))
                ),
            }
            for name, value in CPU_WHERE.items()
        }
        for cpu in range(cpus)
    ]
    left_out = [
        {"round": i + 1, "kind": r.kind, "why": r.why_not}
        for i, r in enumerate(rounds)
        if not r.counted
    ]
    return {
        "slices": slices,
        "node_keeps": summary(shares),
        "where": where,
        "per_cpu": per_cpu,
        "left_out": left_out,
        "busy_ratio": summary([r.busy_ratio for r in rounds]),
    }


# ---- running ----------------------------------------------------------------


class AgentCpuTime:
    """The agent's energy probe's per-CPU totals, read beside it: its
    cpu_time map, found among the agent's open maps by name and shape."""

    MAP_NAME = "cpu_time"
    PERCPU_ARRAY = 6

    def __init__(self, pid: int) -> None:
        lib = libbpf.library()
        lib.bpf_map_get_fd_by_id.argtypes = [ctypes.c_uint32]
        lib.bpf_map_get_fd_by_id.restype = ctypes.c_int
        self.fd = -1
        for fd in os.listdir(f"/proc/{pid}/fdinfo"):
            try:
                info = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
            except OSError:
                continue
            fields = dict(re.findall(r"^(\w+):\s*(\S+)", info, re.M))
            if (
                fields.get("map_type") != str(self.PERCPU_ARRAY)
                or fields.get("value_size") != str(ctypes.sizeof(energy_layout.CpuTime))
                or fields.get("max_entries") != "1"
            ):
                continue
            found = lib.bpf_map_get_fd_by_id(int(fields["map_id"]))
            if found >= 0 and self._name(found) == self.MAP_NAME:
                self.fd = found
                break
            if found >= 0:
                os.close(found)
        if self.fd < 0:
            raise RuntimeError(f"no {self.MAP_NAME} map among process {pid}'s")
        self.map_fd, self.max_entries = self.fd, 1

    @staticmethod
    def _name(fd: int) -> str:
        info = (ctypes.c_char * 256)()  # struct bpf_map_info: name at byte 24
        size = ctypes.c_uint32(ctypes.sizeof(info))
        if libbpf.library().bpf_obj_get_info_by_fd(fd, info, ctypes.byref(size)):
            return ""
        return bytes(info[24:40]).split(b"\0")[0].decode(errors="replace")

    def read(self) -> list[dict[str, int]]:
        per_cpu = read_per_cpu(self, energy_layout.CpuTime)[0]
        return [{f: int(getattr(c, f)) for f in CPU_FIELDS} for c in per_cpu]

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _per_s(
    before: list[dict[str, int]], after: list[dict[str, int]], seconds: float
) -> list[dict[str, float]]:
    return [
        {f: (a[f] - b[f]) / seconds for f in CPU_FIELDS} for b, a in zip(before, after, strict=True)
    ]


def _loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip()


def _round(
    kind: str, report: EnergyReport, other_sent: int, per_cpu: list[dict[str, float]]
) -> Round:
    node = report.node
    if node is None or not report.available:
        raise RuntimeError(f"no energy figures: {report.reason}")
    seconds = report.interval_s
    return Round(
        kind=kind,
        seconds=seconds,
        joules={n: report.slices[n].joules for n in SLICES},
        packets={n: report.slices[n].packets for n in SLICES},
        cycles_softirq={n: report.slices[n].cycles_softirq for n in SLICES},
        cycles_process={n: report.slices[n].cycles_process for n in SLICES},
        node={f: float(getattr(node, f)) / seconds for f in NODE_FIELDS},
        busy_ratio=node.busy_ratio,
        other_sent_per_s=other_sent / seconds,
        per_cpu=per_cpu,
    )


async def _rounds(
    url: str,
    other: OtherTraffic,
    cpus: AgentCpuTime,
    kinds: list[str],
    intervals: int,
    interval_s: float,
) -> list[Round]:
    rounds: list[Round] = []
    async with SauronClient(url) as api:
        await next_interval(api, interval_s)
        await next_interval(api, interval_s)  # the slices' traffic under way
        for k, kind in enumerate(kinds):
            if kind == "loaded":
                other.resume()
            else:
                other.pause()
            # the interval the switch falls in is left out
            first = last = await next_interval(api, interval_s)
            cpu_before, sent_before = cpus.read(), other.sent()
            for _ in range(intervals):
                last = await next_interval(api, interval_s)
            cpu_after, sent = cpus.read(), other.sent() - sent_before
            report = await api.energy(since=first + 0.001, until=last)
            r = _round(kind, report, sent, _per_s(cpu_before, cpu_after, report.interval_s))
            rounds.append(r)
            print(
                f"  {k + 1:2}/{len(kinds)} {kind:<6} "
                + "  ".join(f"{n} {r.uj_per_packet(n):6.2f}" for n in SLICES)
                + f" uJ/packet; softirq {r.node['cycles_softirq'] / 1e6:6.1f} Mcycles/s "
                f"(node's {r.node['cycles_softirq_node'] / 1e6:6.1f}); "
                f"busy {100 * r.busy_ratio:3.0f} %; other traffic {r.other_sent_per_s:5.0f}/s",
                flush=True,
            )
    return rounds


def measure(
    kinds: list[str], intervals: int, interval_s: float, other_pps: float, watch_upfs: bool
) -> list[Round]:
    catalog_path = REPO / "slices" / "default.yaml"
    catalog = load_catalog(catalog_path)
    sessions = SessionsFile(sessions=make_sessions(catalog, {"embb": 1, "urllc": 1}))
    ue = {s.slice: str(s.ue_ip) for s in sessions.sessions}
    plan = {ue["embb"]: float(EMBB_PPS), ue["urllc"]: float(URLLC_PPS)}
    watch = [{"name": f"upf-{n}", "slice": n} for n in SLICES] if watch_upfs else []
    with (
        tempfile.TemporaryDirectory() as tmp,
        Testbed(catalog, sessions, Path(tmp) / "bed", echo_interval=5.0, upf_per_slice=True) as bed,
        OtherTraffic(other_pps) as other,
    ):
        config = agent_config(
            Path(tmp) / "agent.yaml",
            bed.upf,
            catalog=str(catalog_path),
            interval_s=interval_s,
            energy={"watch": watch},
        )
        agent, url = start_agent(config, within_s=120)
        stop, sent = threading.Event(), {}
        sender = threading.Thread(target=send_paced, args=(bed, plan, stop, sent))
        cpus: AgentCpuTime | None = None
        try:
            cpus = AgentCpuTime(agent.pid)
            other.start()
            other.pause()
            sender.start()
            return asyncio.run(_rounds(url, other, cpus, kinds, intervals, interval_s))
        finally:
            if cpus is not None:
                cpus.close()
            stop.set()
            if sender.is_alive():
                sender.join()
            other.stop()
            stop_agent(agent)


def _tidy(value: Any) -> Any:
    """Floats to five significant digits, all the way down."""
    if isinstance(value, float):
        return float(f"{value:.5g}")
    if isinstance(value, dict):
        return {k: _tidy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tidy(v) for v in value]
    return value


def _pct(x: float) -> str:
    return f"{100 * x:+.1f} %"


def _spread(s: dict[str, float]) -> str:
    if not s["n"]:
        return "no round compared"
    return (
        f"{_pct(s['median'])}  IQR {100 * s['q1']:+.1f}..{100 * s['q3']:+.1f}  "
        f"min..max {100 * s['min']:+.1f}..{100 * s['max']:+.1f}  ({s['n']} rounds)"
    )


def report(figures: dict[str, Any], settings: dict[str, Any]) -> str:
    lines = [
        f"joules per packet beside other traffic ({settings['other_pps']:.0f} UDP datagrams/s "
        f"between two other namespaces), against the mean of the quiet rounds either side; "
        f"{settings['pairs']} loaded and {settings['pairs']} sham rounds of "
        f"{settings['round_intervals']} x {settings['interval_s']:g} s"
        + ("; UPFs watched" if settings["watch_upfs"] else "; UPFs not watched"),
    ]
    for name, s in figures["slices"].items():
        quiet = s["uj_per_packet_quiet"]
        lines += [
            f"  {name}: {quiet['median']:.2f} uJ/packet alone (median of {quiet['n']} quiet rounds)",
            f"    beside other traffic  {_spread(s['beside_other_traffic'])}",
            f"    alone again (noise)   {_spread(s['alone_again_noise_floor'])}",
            f"    goal |median| <= {100 * GOAL:.0f} %: {'met' if s['met'] else 'MISSED'}",
        ]
    keeps = figures["node_keeps"]
    if keeps["n"]:
        lines.append(
            f"  of the softirq time the other traffic added, the node keeps "
            f"{100 * keeps['median']:.1f} % (IQR {100 * keeps['q1']:.1f}..{100 * keeps['q3']:.1f}, "
            f"min..max {100 * keeps['min']:.1f}..{100 * keeps['max']:.1f}, {keeps['n']} rounds)"
        )
    lines.append("  where it comes from (median change, beside / alone again):")
    for name, w in figures["where"].items():
        beside, sham = w["beside_other_traffic"], w["alone_again_noise_floor"]
        if beside["n"] and sham["n"]:
            lines.append(f"    {name:<32} {_pct(beside['median']):>9} / {_pct(sham['median']):>9}")
    for cpu, figs in enumerate(figures["per_cpu"]):
        lines.append(
            f"  CPU {cpu} (the probe's own totals; quiet median, change beside / alone again):"
        )
        for name, w in figs.items():
            beside, sham = w["beside_other_traffic"], w["alone_again_noise_floor"]
            if beside["n"] and sham["n"]:
                lines.append(
                    f"    {name:<32} {w['quiet_median']:>12,.2f} "
                    f"{_pct(beside['median']):>9} / {_pct(sham['median']):>9}"
                )
    busy = figures["busy_ratio"]
    if busy["n"]:
        lines.append(
            f"  the node's CPUs busy {100 * busy['median']:.0f} % of the time "
            f"(median round; {100 * busy['min']:.0f}..{100 * busy['max']:.0f} %)"
        )
    for out in figures["left_out"]:
        lines.append(f"  round {out['round']} ({out['kind']}) left out: {out['why']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=12, help="loaded rounds (and as many shams)")
    parser.add_argument("--round-intervals", type=int, default=4, help="intervals measured a round")
    parser.add_argument("--interval", type=float, default=0.5, help="the agent's interval, s")
    parser.add_argument("--other-pps", type=float, default=5000.0)
    parser.add_argument(
        "--watch-upfs", action="store_true", help="watch each slice's UPF (its CPU time counts)"
    )
    parser.add_argument("--seed", type=int, default=1, help="the order of each loaded/sham pair")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--rounds-output", type=Path, default=ROUNDS)
    args = parser.parse_args()
    settings = {
        "pairs": args.pairs,
        "round_intervals": args.round_intervals,
        "interval_s": args.interval,
        "other_pps": args.other_pps,
        "watch_upfs": args.watch_upfs,
        "seed": args.seed,
        "embb_pps": EMBB_PPS,
        "urllc_pps": URLLC_PPS,
    }
    kinds = order(args.pairs, args.seed)
    load_before, started = _loadavg(), time.monotonic()
    rounds = measure(kinds, args.round_intervals, args.interval, args.other_pps, args.watch_upfs)
    load_after, took = _loadavg(), time.monotonic() - started
    check_rounds(rounds, args.other_pps)
    figures = analyse(rounds)
    print(report(figures, settings))
    print(f"  {machine()}; {took:.0f} s; /proc/loadavg before {load_before}, after {load_after}")
    result = {
        "command": " ".join(["python -m bench.energy_isolation", *sys.argv[1:]]),
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "seconds": round(took),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "settings": settings,
        "goal": GOAL,
        **figures,
    }
    args.output.write_text(json.dumps(_tidy(result), indent=2) + "\n")
    args.rounds_output.write_text(json.dumps([asdict(r) for r in rounds], indent=1) + "\n")
    print(f"written {args.output}, {args.rounds_output}")


if __name__ == "__main__":
    main()
