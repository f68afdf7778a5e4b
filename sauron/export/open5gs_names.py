"""Optional /metrics families under the names Open5GS's UPF exposes
(src/upf/metrics.c), so dashboards and rules written for an Open5GS UPF
show Sauron's counts (`service.open5gs_metric_names`).

Open5GS counts one UPF; Sauron counts per slice, so each family carries the
slice's label set (slice, snssai, sst, sd: `sum()` over them is the UPF's
figure, `unclassified` included). The volume families count the octets of
the inner IP packets, as Open5GS does. Open5GS labels its volumes by QFI;
Sauron's per-QFI counters count whole frames, not inner packets, so these
families carry no `qfi` label rather than a QFI's volume of other bytes.

Open5GS declares them counters without the `_total` suffix Prometheus's
naming asks of a counter; they are declared untyped here, which every
PromQL function (rate, increase) reads alike, and which `promtool check
metrics` accepts under those names."""

from __future__ import annotations

from collections.abc import Mapping

from sauron.abi import layout
from sauron.bpf.maps import DataPlaneCounters

#: (family, help, attach point, direction, the counter read there)
FAMILIES = (
    (
        "fivegs_ep_n3_gtp_indatapktn3upf",
        "Number of incoming GTP data packets on the N3 interface (G-PDUs), per slice.",
        layout.POINT_N3_INGRESS,
        layout.DIR_UPLINK,
        "g_pdus",
    ),
    (
        "fivegs_ep_n3_gtp_outdatapktn3upf",
        "Number of outgoing GTP data packets on the N3 interface (G-PDUs), per slice.",
        layout.POINT_N3_EGRESS,
        layout.DIR_DOWNLINK,
        "g_pdus",
    ),
    (
        "fivegs_ep_n3_gtp_indatavolumeqosleveln3upf",
        "Octets of the inner IP packets of incoming GTP data packets on the N3 "
        "interface, per slice (no qfi label: see the agent's docs/3gpp.md).",
        layout.POINT_N3_INGRESS,
        layout.DIR_UPLINK,
        "inner_bytes",
    ),
    (
        "fivegs_ep_n3_gtp_outdatavolumeqosleveln3upf",
        "Octets of the inner IP packets of outgoing GTP data packets on the N3 "
        "interface, per slice (no qfi label: see the agent's docs/3gpp.md).",
        layout.POINT_N3_EGRESS,
        layout.DIR_DOWNLINK,
        "inner_bytes",
    ),
)


def value(c: DataPlaneCounters, slice_id: int, point: int, direction: int, what: str) -> int:
    """A family's count for one slice, since the programs loaded."""
    stats = c.slice(point, slice_id, direction)
    if what == "g_pdus":
        return int(stats.msg[layout.MSG_G_PDU])
    return int(stats.inner_bytes)


def lines(
    c: DataPlaneCounters, slices: list[tuple[int, str]], labels: Mapping[str, str]
) -> list[str]:
    """The families' lines: `slices` (id, name), `labels` each slice's
    label set as the exposition writes it ({slice="...",...})."""
    out: list[str] = []
    for name, help_text, point, direction, what in FAMILIES:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} untyped")
        for sid, sname in slices:
            out.append(f"{name}{labels[sname]} {value(c, sid, point, direction, what)}")
    return out
