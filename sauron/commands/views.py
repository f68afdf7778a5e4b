"""Terminal views of the agent's answers, for the CLI: plain text tables
from the API's models (no colours, so they pipe and log cleanly)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from sauron.abi.kpis import DIRECTIONS, LATENCY_KPIS, SECURITY_KPIS, LatencyKpi
from sauron.service import schemas


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _snssai(s: schemas.Snssai | None) -> str:
    """1-000001, or 1 without SD; - for unclassified, which has none."""
    if s is None:
        return "-"
    return f"{s.sst}" + (f"-{s.sd}" if s.sd else "")


def slices_table(doc: schemas.SliceList) -> str:
    lines = [f"{'slice':<10}{'id':>3}  {'S-NSSAI':<11}{'status':<12}{'targets'}"]
    for s in doc.slices:
        snssai = _snssai(s.snssai)
        targets = ", ".join(sorted(s.sla_targets)) or "-"
        lines.append(f"{s.name:<10}{s.id:>3}  {snssai:<11}{s.status:<12}{targets}")
    return "\n".join(lines)


#: wide enough for "unclassified" (slice 0, in `top` and `kpis unclassified`)
SLICE_COLUMN = 14


def _loss(d: Any) -> float | None:
    ratios = [r for r in (d.loss.transit_ratio, d.loss.sequence_ratio) if r is not None]
    return max(ratios) if ratios else None


def _p99(kpi: LatencyKpi, k: Any) -> str:
    """The p99 of a latency KPI in its unit (ms): UL / DL when it is per direction."""
    if kpi.per_direction:
        return " / ".join(_ms(getattr(getattr(k, d), kpi.name).p99_ms) for d in DIRECTIONS)
    return _ms(getattr(k, kpi.name).p99_ms)


def _p99_heading(kpi: LatencyKpi) -> str:
    return f"{kpi.title} p99{' UL/DL' if kpi.per_direction else ''}"


#: the columns after the slice's name: heading, width, cell (latency ones
#: from sauron.abi.kpis)
COLUMNS: tuple[tuple[str, int, Callable[[Any], str]], ...] = (
    ("SLA", -14, lambda k: k.sla),
    ("UL Mbit/s", 10, lambda k: f"{k.uplink.mbps:.2f}"),
    ("DL Mbit/s", 10, lambda k: f"{k.downlink.mbps:.2f}"),
    ("UL pkt/s", 10, lambda k: f"{k.uplink.pps:.0f}"),
    ("DL pkt/s", 10, lambda k: f"{k.downlink.pps:.0f}"),
    ("TEIDs", 7, lambda k: str(k.active_teids)),
    ("UEs", 6, lambda k: str(k.active_ues)),
    ("UPF drops", 10, lambda k: str(k.uplink.upf_drops + k.downlink.upf_drops)),
    *((_p99_heading(kpi), len(_p99_heading(kpi)) + 2, partial(_p99, kpi)) for kpi in LATENCY_KPIS),
    ("loss UL/DL", 16, lambda k: f"{_ratio(_loss(k.uplink))} / {_ratio(_loss(k.downlink))}"),
)


def _energy(k: Any, figure: Callable[[Any], str]) -> str:
    return "-" if k.energy is None else figure(k.energy)


#: a slice's energy: power over the interval, joules since the agent
#: started, joules per GB of the interval's traffic
ENERGY_COLUMNS: tuple[tuple[str, int, Callable[[Any], str]], ...] = (
    ("W", 8, partial(_energy, figure=lambda e: f"{e.watts:.2f}")),
    ("J", 9, partial(_energy, figure=lambda e: f"{e.cumulative_joules:.1f}")),
    ("J/GB", 9, partial(_energy, figure=lambda e: _per_unit(e.joules_per_gb, ".0f"))),
)


def pick_columns(*headings: str) -> tuple[tuple[str, int, Callable[[Any], str]], ...]:
    """The columns of COLUMNS and ENERGY_COLUMNS with these headings, in
    the order given (a narrower table than `sauron kpis`)."""
    known = {h: c for c in (*COLUMNS, *ENERGY_COLUMNS) for h in (c[0],)}
    return tuple(known[h] for h in headings)


def fit_cell(text: str, width: int) -> str:
    """Right-aligned in `width`, left-aligned in -`width`."""
    return f"{text:<{-width}}" if width < 0 else f"{text:>{width}}"


KPI_HEAD = f"{'slice':<{SLICE_COLUMN}}" + "".join(fit_cell(h, w) for h, w, _ in COLUMNS)


def kpi_row(name: str, k: Any, width: int = SLICE_COLUMN) -> str:
    return f"{name:<{width}}" + "".join(fit_cell(cell(k), w) for _, w, cell in COLUMNS)


def kpis_table(rows: Sequence[tuple[str, schemas.SliceKpis]]) -> str:
    """One row per slice, in the order given; the name column as wide as
    the longest name needs (a name never runs into the next column)."""
    width = max([SLICE_COLUMN, *(len(name) + 2 for name, _ in rows)])
    head = f"{'slice':<{width}}" + "".join(fit_cell(h, w) for h, w, _ in COLUMNS)
    return "\n".join([head, *(kpi_row(name, k, width) for name, k in rows)])


#: an SLA target's unit, from the suffix its name carries in the catalog
#: (sauron.catalog.SlaTargets: transit_latency_ms.p99, max_loss_ratio, ...)
TARGET_UNITS = (
    ("_ms", "ms"),
    ("_mbps", "Mbit/s"),
    ("_j_per_gb", "J/GB"),
    ("_events_per_s", "frames/s"),
)


def with_unit(target: str, value: float) -> str:
    """A target's limit or measured value in its unit: 5 ms, 1 Mbit/s,
    0.001 % (a ratio as a percentage), 500 J/GB."""
    if "_ratio" in target:
        return f"{value * 100:.4g} %"
    for suffix, unit in TARGET_UNITS:
        if suffix in target:
            return f"{value:.4g} {unit}"
    return f"{value:.4g}"


def clock(at: float | None) -> str:
    """A time as the dashboard shows it: the local clock, to the second."""
    return "-" if at is None else time.strftime("%H:%M:%S", time.localtime(at))


def sla_report(doc: schemas.SlaReport) -> str:
    rule = doc.rule
    lines = [
        f"interval {doc.interval}; a violation opens after {rule.open_bad} failed checks "
        f"of {rule.window}, closes after {rule.close_good} good ones in a row (recovered) "
        f"or after {rule.window} intervals without a check (not measured)",
        "",
    ]
    lines += [f"{name:<14}{status}" for name, status in doc.status.items()]
    if doc.events:
        lines += [
            "",
            f"{'slice':<14}{'target':<32}{'limit':>12}{'worst':>12}  {'from':<8}  {'to':<8}  state",
        ]
        for v in doc.events:
            reason = f" ({v.end_reason})" if v.end_reason else ""
            state = "open" if v.open else f"closed{reason}"
            lines.append(
                f"{v.slice:<14}{v.target:<32}{with_unit(v.target, v.limit):>12}"
                f"{with_unit(v.target, v.worst):>12}  {clock(v.started_at):<8}  "
                f"{clock(v.ended_at):<8}  {state}, {v.intervals} intervals"
            )
    return "\n".join(lines)


def diagnosis_report(doc: schemas.DiagnosisReport) -> str:
    """`sauron diagnose SLICE`: the probe's state, the episode, then each
    diagnosis: its sentence and its factors with their shares."""
    if not doc.enabled:
        return f"{doc.slice}: diagnosis is off (diagnosis.enabled is false)"
    probe = doc.probe
    if probe is not None and not probe.available:
        state = f"probe unavailable: {probe.missing}"
    else:
        state = "probe attached" if probe is not None and probe.attached else "probe detached"
    episode = doc.episode
    lines = [
        f"{doc.slice}: "
        + (
            f"degraded since interval {episode.began_interval}, {clock(episode.began_at)} "
            f"({', '.join(episode.targets)})"
            if episode is not None
            else "not degraded"
        )
        + f"; {state}"
    ]
    if not doc.diagnoses:
        lines.append("no diagnosis yet")
    for d in doc.diagnoses:
        lines += ["", f"{clock(d.time)}  {d.summary}"]
        for f in d.factors:
            lines.append(f"  {f.share * 100:5.1f} %  {f.name:<16}{f.figure}  [{f.method}]")
            held = f.evidence.get("held_by")
            if isinstance(held, dict):
                lines.append(
                    f"{'':28}the CPU held by {held.get('comm')} (pid {held.get('pid')}) on "
                    f"CPU {held.get('cpu')}, {float(held.get('share_of_wait', 0)) * 100:.0f} % "
                    "of the wait"
                )
        for what in d.unmeasured:
            lines.append(f"  not measured: {what}")
    evidence = doc.evidence
    if evidence is not None and not evidence.available:
        lines += ["", f"no evidence kept: {evidence.missing}"]
    elif evidence is not None and evidence.files:
        lines += ["", "evidence (the frames' heads, pcapng):"]
        for e in evidence.files:
            size = f"{e.frames} frames, {e.bytes / 1e6:.1f} MB" + (", capped" if e.capped else "")
            lines.append(f"  {clock(e.started_at)}  {e.target:<26}{e.path}  ({size})")
    return "\n".join(lines)


def _checks_lines(doc: schemas.SecurityReport | schemas.SliceSecurityReport) -> list[str]:
    c = doc.checks
    if not doc.enabled or c is None:
        return [f"security checks off: {doc.missing}"]
    peers = (
        f"unknown peers counted ({len(c.peers_configured)} configured, "
        f"{len(c.peers_learned)} learned)"
        if c.peers_checked
        else "unknown peers not counted (none configured or learned)"
    )
    return [
        f"security checks on: {peers}, {len(c.protected)} protected prefix(es)",
        f"detections: a TEID scan from {c.scan_threshold} unknown TEIDs a second, a spoofing "
        f"UE from {c.spoof_threshold} sources a second; ended after {c.quiet_s:g} s without "
        "a frame",
    ]


#: a security kind's column: as wide as its title, at least this
KIND_COLUMN = 14


def _security_cell(frames: Any, per_s: Any, kind: str) -> str:
    """The frames of a kind, and their rate when there were any; - when the
    checks were off throughout."""
    if frames is None:
        return "-"
    n = getattr(frames, kind)
    return f"{n} ({getattr(per_s, kind):.3g}/s)" if n else "0"


def _security_events(events: Sequence[schemas.SecurityEventDoc]) -> list[str]:
    if not events:
        return ["no detection in the window"]
    lines = [
        f"detections ({len(events)}), oldest first",
        f"{'kind':<13}{'slice':<{SLICE_COLUMN}}{'peer':<26}{'frames':>8}{'distinct':>10}"
        f"  {'first':<8}  {'last':<8}  {'state':<9}TEIDs",
    ]
    for e in events:
        more = e.distinct - len(e.teids) if e.kind == "teid_scan" else 0
        teids = " ".join(e.teids) + (f" (+{more} more)" if more > 0 else "")
        lines.append(
            f"{e.kind:<13}{e.slice:<{SLICE_COLUMN}}{e.peer:<26}{e.count:>8}{e.distinct:>10}"
            f"  {clock(e.first_seen):<8}  {clock(e.last_seen):<8}  "
            f"{'ongoing' if e.ongoing else 'ended':<9}{teids}"
        )
    return lines


def security_report(doc: schemas.SecurityReport | schemas.SliceSecurityReport) -> str:
    """`sauron security`: what the checks run with, the window, the frames
    per slice and check (with their rate), then the detections."""
    if isinstance(doc, schemas.SliceSecurityReport):
        rows = [(doc.slice, doc.frames, doc.per_s)]
    else:
        rows = [(name, s.frames, s.per_s) for name, s in doc.slices.items()]
    lines = _checks_lines(doc)
    # the detections whatever the counts show: one goes on from before a
    # restart, or ended before the history kept begins
    events = ["", *_security_events(doc.events)]
    if doc.since is None or doc.until is None:
        return "\n".join([*lines, "no interval measured in the window", *events])
    if all(frames is None for _, frames, _ in rows):
        return "\n".join(
            [*lines, "no frame checked: the checks were off throughout the window", *events]
        )
    lines += [
        f"window {clock(doc.since)} - {clock(doc.until)} "
        f"({doc.seconds:.1f} s, {doc.intervals} interval(s)): uplink G-PDUs that failed each check",
        "",
    ]
    widths = [max(KIND_COLUMN, len(k.title)) + 2 for k in SECURITY_KPIS]
    name_width = max([SLICE_COLUMN, *(len(name) + 2 for name, _, _ in rows)])
    lines.append(
        f"{'slice':<{name_width}}"
        + "".join(f"{k.title:>{w}}" for k, w in zip(SECURITY_KPIS, widths, strict=True))
    )
    for name, frames, per_s in rows:
        lines.append(
            f"{name:<{name_width}}"
            + "".join(
                f"{_security_cell(frames, per_s, k.name):>{w}}"
                for k, w in zip(SECURITY_KPIS, widths, strict=True)
            )
        )
    return "\n".join([*lines, *events])


def top_screen(snap: schemas.SnapshotDoc, url: str) -> str:
    """One frame of `sauron top`: every slice of the newest interval, in
    the catalog's order (rows that moved every frame could not be
    followed), the interval's end as a clock time."""
    return (
        f"sauron top - {url} - interval of {snap.interval_s:.2f} s ending {clock(snap.time)}\n\n"
        + kpis_table(list(snap.slices.items()))
    )


IDLE_RULES = {
    "none": "idle power reported, not attributed",
    "proportional": "idle power shared by the slices' dynamic energy",
    "equal": "idle power shared equally by the slices",
}


def _per_unit(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def energy_table(doc: schemas.EnergyReport) -> str:
    """`sauron energy`: the node, how its figures were made, and each slice."""
    node = doc.node
    if node is None:
        return f"no energy estimate: {doc.reason or 'no interval measured yet'}"
    model = (
        f"profile {node.profile} ({node.profile_reason})"
        if node.method == "profile"
        else f"{node.method} ({node.energy_source}); idle part from profile {node.profile}"
    )
    lines = [
        f"node: {node.watts:.2f} W over {doc.interval_s:.2f} s "
        f"({node.dynamic_joules:.3f} J dynamic + {node.idle_joules:.3f} J idle); "
        f"{node.cpus} CPUs at {node.frequency_mhz:.0f} MHz, {node.busy_ratio:.1%} busy",
        f"power model: {model}",
        f"cycles: on-CPU time from the kernel x {node.cycle_source}",
        f"{IDLE_RULES.get(node.idle_rule, node.idle_rule)}; "
        f"{node.joules_per_gigacycle:.3f} J per 10^9 busy cycles",
        "",
        f"{'slice':<14}{'W':>9}{'J':>10}{'J/GB':>10}{'uJ/pkt':>9}"
        f"{'Mcyc softirq':>14}{'process':>9}{'bpf':>8}{'total J':>11}{'J by volume':>13}",
    ]
    for name, e in doc.slices.items():
        lines.append(
            f"{name:<14}{e.watts:>9.4f}{e.joules:>10.4f}{_per_unit(e.joules_per_gb, '.2f'):>10}"
            f"{_per_unit(e.microjoules_per_packet, '.2f'):>9}"
            f"{e.cycles_softirq / 1e6:>14.2f}{e.cycles_process / 1e6:>9.2f}"
            f"{e.cycles_bpf / 1e6:>8.3f}{e.cumulative_joules:>11.2f}{e.volume_joules:>13.4f}"
        )
    lines.append(
        f"{'unattributed':<14}{node.unattributed_joules / doc.interval_s:>9.4f}"
        f"{node.unattributed_joules:>10.4f}"
    )
    lines.append(
        f"packet softirq: {node.softirq_packets_sauron} of {node.softirq_packets} packets "
        f"received were Sauron's; {node.cycles_softirq_node / 1e6:.2f} of "
        f"{node.cycles_softirq / 1e6:.2f} Mcycles stay the node's (other traffic)"
    )
    lines.append(
        "J by volume: the attributed joules split by the slices' N3 data volume instead of "
        "their CPU time (docs/3gpp.md)"
    )
    if node.capped:
        lines.append("(slices' measured cycles exceeded the node's: scaled down to the node's)")
    lines += ["", *[f"note: {n}" for n in node.notes]]
    return "\n".join(lines)


def _pm_value(m: schemas.Measurement) -> str:
    if m.value is None:
        return "-"
    return f"{m.value:.6g}" if m.unit == "bit/J" else f"{m.value:.0f}"


def pm_table(doc: schemas.PmReport) -> str:
    """`sauron pm`: each slice's 3GPP measurements over the granularity period."""
    period = doc.granularity_period
    if period is None:
        return "no interval measured yet"
    lines = [
        f"granularity period {clock(period.begin)} - {clock(period.end)} "
        f"({period.seconds:.1f} s, {period.intervals} interval(s))"
    ]
    for s in doc.slices:
        lines += ["", f"{s.slice} (S-NSSAI {s.snssai})"]
        for m in s.measurements:
            name = m.name if m.energy_method is None else f"{m.name} [{m.energy_method}]"
            lines.append(f"  {name:<56}{_pm_value(m):>14} {m.unit:<8}{m.clause}")
    if not doc.energy_available:
        lines += ["", "energy efficiency: no energy estimate (energy.enabled is off)"]
    return "\n".join(lines)


def pdu_sessions_table(doc: schemas.PduSessions) -> str:
    """`sauron sessions`: one line per learned PDU session."""
    if not doc.sessions:
        feeds = doc.sources.get("smf_feeds", [])
        watches = doc.sources.get("pfcp", {}).get("watches", [])
        if not feeds and not watches:
            return "no sessions: the agent has no control_plane source configured"
        return "no sessions learned yet"
    lines = [
        f"{'source':<7}{'SEID / SUPI':<24}{'UE':<18}{'S-NSSAI':<10}{'DNN':<12}"
        f"{'slice':<12}{'rule':<18}{'TEIDs'}"
    ]
    for s in doc.sessions:
        who = s.supi or s.seid or "-"
        nssai = (
            "-"
            if s.snssai is None
            else f"{s.snssai.sst}" + (f"-{s.snssai.sd}" if s.snssai.sd else "")
        )
        lines.append(
            f"{s.source:<7}{who:<24}{s.ue_ip or '-':<18}{nssai:<10}{s.dnn or '-':<12}"
            f"{s.slice or '-':<12}{s.slice_rule or '-':<18}{' '.join(s.teids) or '-'}"
        )
    if doc.total > doc.count:
        lines.append(f"... {doc.total - doc.count} more (--limit)")
    return "\n".join(lines)
