"""Terminal views of the agent's answers, for the CLI: plain text tables
from the API's models (no colours, so they pipe and log cleanly)."""

from __future__ import annotations

from collections.abc import Sequence

from sauron.service import schemas


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def slices_table(doc: schemas.SliceList) -> str:
    lines = [f"{'slice':<10}{'id':>3}  {'S-NSSAI':<11}{'status':<12}{'targets'}"]
    for s in doc.slices:
        snssai = f"{s.snssai.sst}" + (f"-{s.snssai.sd}" if s.snssai.sd else "")
        targets = ", ".join(sorted(s.sla_targets)) or "-"
        lines.append(f"{s.name:<10}{s.id:>3}  {snssai:<11}{s.status:<12}{targets}")
    return "\n".join(lines)


KPI_HEAD = (
    f"{'slice':<10}{'SLA':<11}{'UL Mbit/s':>10}{'DL Mbit/s':>10}{'UL pkt/s':>10}{'DL pkt/s':>10}"
    f"{'TEIDs':>7}{'UEs':>6}{'UPF drops':>10}{'transit p99 UL/DL ms':>22}{'RAN RTT p99':>12}"
    f"{'loss UL/DL':>16}"
)


def kpi_row(name: str, k: schemas.SliceKpis) -> str:
    def loss(d: schemas.Direction) -> float | None:
        ratios = [r for r in (d.loss.transit_ratio, d.loss.sequence_ratio) if r is not None]
        return max(ratios) if ratios else None

    transit = f"{_ms(k.uplink.transit.p99_ms)} / {_ms(k.downlink.transit.p99_ms)}"
    losses = f"{_ratio(loss(k.uplink))} / {_ratio(loss(k.downlink))}"
    return (
        f"{name:<10}{k.sla:<11}{k.uplink.mbps:>10.2f}{k.downlink.mbps:>10.2f}"
        f"{k.uplink.pps:>10.0f}{k.downlink.pps:>10.0f}{k.active_teids:>7}{k.active_ues:>6}"
        f"{k.uplink.upf_drops + k.downlink.upf_drops:>10}"
        f"{transit:>22}{_ms(k.ran_rtt.p99_ms):>12}{losses:>16}"
    )


def kpis_table(rows: Sequence[tuple[str, schemas.SliceKpis]]) -> str:
    return "\n".join([KPI_HEAD, *(kpi_row(name, k) for name, k in rows)])


def sla_report(doc: schemas.SlaReport) -> str:
    rule = doc.rule
    lines = [
        f"interval {doc.interval}; a violation opens after {rule.open_bad} failed checks "
        f"of {rule.window}, closes after {rule.close_good} good ones",
        "",
    ]
    lines += [f"{name:<10}{status}" for name, status in doc.status.items()]
    if doc.events:
        lines += [
            "",
            f"{'slice':<10}{'target':<36}{'limit':>10}{'worst':>12}  {'intervals':>9}  state",
        ]
        for v in doc.events:
            state = "open" if v.open else f"closed at interval {v.ended_interval}"
            lines.append(
                f"{v.slice:<10}{v.target:<36}{v.limit:>10.6g}{v.worst:>12.6g}  "
                f"{v.intervals:>9}  {state} (from interval {v.started_interval})"
            )
    return "\n".join(lines)


def top_screen(snap: schemas.SnapshotDoc, url: str) -> str:
    """One frame of `sauron top`: every slice of the newest interval."""
    rows = sorted(snap.slices.items(), key=lambda kv: -(kv[1].uplink.mbps + kv[1].downlink.mbps))
    return f"sauron top - {url} - interval {snap.interval_s:.2f} s\n\n" + kpis_table(rows)
