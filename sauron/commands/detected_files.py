"""An agent configuration and a slice catalog written from what was found
on an Open5GS host: every value with a comment saying where it was found,
every gap a commented-out line with a hint of what to fill in."""

from __future__ import annotations

import json
import re
import time

import yaml

from sauron.commands.open5gs_detect import Detection, Entry, Gap

_PLAIN = re.compile(r"^[A-Za-z0-9_./:@-]+$")


def scalar(value: str | int) -> str:
    """A YAML scalar that reads back as the value (quoted when it would not)."""
    if isinstance(value, int):
        return str(value)
    if _PLAIN.match(value) and yaml.safe_load(value) == value:
        return value
    return json.dumps(value)


def _comment(text: str, indent: str) -> list[str]:
    return [f"{indent}# {line}" for line in text.splitlines() or [""]]


def _entry(entry: Entry, indent: str) -> list[str]:
    lines = _comment(entry.why, indent)
    first = True
    for key, value in entry.keys.items():
        lines.append(f"{indent}{'- ' if first else '  '}{key}: {scalar(value)}")
        first = False
    return lines


def _gap(gap: Gap, indent: str) -> list[str]:
    return [*_comment(f"not found: {gap.hint}", indent), f"{indent}# {gap.line}"]


def _list_section(key: str, entries: list[Entry], gaps: list[Gap], indent: str) -> list[str]:
    """`key:` and its items; the key commented out too when nothing was found."""
    if not entries:
        return [f"{indent}# {key}:", *[line for g in gaps for line in _gap(g, indent + "  ")]]
    lines = [f"{indent}{key}:"]
    for e in entries:
        lines += _entry(e, indent + "  ")
    for g in gaps:
        lines += _gap(g, indent + "  ")
    return lines


def agent_text(found: Detection, catalog: str | None, port: int) -> str:
    """The agent configuration; `catalog` as the file names it (None: none
    was written that loads, the packaged one is used)."""
    lines = [
        "# Sauron agent configuration, written by `sauron config init --detect`",
        f"# on {found.node} at {time.strftime('%Y-%m-%d %H:%M:%S %Z')}. Each value says",
        "# where it was found; a commented-out line is what was not, with a hint.",
        "# Check it against this host with `sauron config check FILE`.",
        "# this agent's name in the published series: the host's name",
        f"node: {scalar(found.node)}",
    ]
    if catalog is not None:
        lines += [
            "# the slices, from the SMF's S-NSSAIs (relative: beside this file)",
            f"catalog: {scalar(catalog)}",
        ]
    else:
        lines += [
            "# not found: no S-NSSAI, so no catalog that loads; the packaged one",
            "# (slices/default.yaml) is used until the written one is completed",
            "# catalog: slices.yaml",
        ]
    lines += _list_section("interfaces", found.interfaces, found.interface_gaps, "")
    lines += [
        "# the REST API and dashboard, on loopback (add token_file to listen elsewhere)",
        "service:",
        "  host: 127.0.0.1",
        f"  port: {port}",
    ]
    learned = _list_section("pfcp", found.pfcp, found.pfcp_gaps, "  ")
    learned += _list_section("open5gs_smf", found.smf, found.smf_gaps, "  ")
    if found.pfcp or found.smf:
        lines += ["# where PDU sessions are learned from", "control_plane:", *learned]
    else:
        lines += ["# where PDU sessions are learned from: nothing found", "# control_plane:"]
        lines += [line if line.lstrip().startswith("#") else f"# {line}" for line in learned]
    if found.watch:
        lines += ["# energy per slice: the network functions whose CPU time counts", "energy:"]
        lines += _list_section("watch", found.watch, [], "  ")
    return "\n".join(lines) + "\n"


def catalog_text(found: Detection) -> str:
    lines = [
        "# Sauron slice catalog, written by `sauron config init --detect` from the",
        "# S-NSSAIs the SMF serves and the UE pools of their DNNs. Add SLA targets",
        "# (sla:) per slice; `sauron catalog check FILE` checks it.",
    ]
    if not found.slices:
        lines += ["# slices:", *[line for g in found.slice_gaps for line in _gap(g, "  ")]]
        return "\n".join(lines) + "\n"
    lines.append("slices:")
    for s in found.slices:
        snssai = f"{{sst: {s.sst}" + (f', sd: "{s.sd}"' if s.sd else "") + "}"
        lines += [
            f"  # S-NSSAI {s.sst}{f'-{s.sd}' if s.sd else ''}, {s.why}",
            f"  - name: {s.name}",
            f"    snssai: {snssai}",
        ]
        if s.dnns:
            lines.append(f"    dnns: [{', '.join(scalar(d) for d in s.dnns)}]")
        if s.subnets:
            lines.append("    ue_subnets:")
            for subnet, why in s.subnets:
                lines += [f"      # {why}", f"      - {scalar(subnet)}"]
        else:
            lines += [
                "    # not found: no UE pool of its DNNs in the UPF's or SMF's file",
                "    # ue_subnets: [10.45.0.0/16]",
            ]
    for g in found.slice_gaps:
        lines += _gap(g, "  ")
    return "\n".join(lines) + "\n"
