"""/metrics in the Prometheus text format (version 0.0.4): the data plane's
monotonic counters per slice, attach point and direction, GTP-U message
kinds, anomalies by reason, and per-slice gauges from the latest interval."""

from __future__ import annotations

from sauron.bpf import layout
from sauron.engine import KpiEngine

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _labels(**labels: object) -> str:
    def esc(v: object) -> str:
        return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in labels.items()) + "}"


def render(engine: KpiEngine) -> str:
    c = engine.counters
    catalog = engine.catalog
    out: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")

    slices = [(0, catalog.name_of(0), "", "")] + [
        (
            s.id,
            s.name,
            s.spec.snssai.sst,
            "" if s.spec.snssai.sd is None else f"{s.spec.snssai.sd:06x}",
        )
        for s in catalog.slices
    ]
    stats = [
        ("sauron_packets_total", "packets", "Packets seen per slice, attach point and direction."),
        (
            "sauron_bytes_total",
            "bytes",
            "Frame bytes (L2 header included) per slice, attach point and direction.",
        ),
        (
            "sauron_inner_bytes_total",
            "inner_bytes",
            "Inner IP bytes per slice, attach point and direction.",
        ),
        (
            "sauron_malformed_total",
            "malformed",
            "Frames with an anomaly per slice, attach point and direction.",
        ),
    ]
    for name, field, help_text in stats:
        family(name, "counter", help_text)
        for sid, sname, sst, sd in slices:
            for point, pname in layout.POINT_NAMES.items():
                for d, dname in layout.DIRECTION_NAMES.items():
                    value = getattr(c.slice(point, sid, d), field)
                    out.append(
                        f"{name}{_labels(slice=sname, sst=sst, sd=sd, point=pname, direction=dname)} {value}"
                    )
    family(
        "sauron_gtpu_messages_total", "counter", "GTP-U messages per slice, attach point and kind."
    )
    for sid, sname, _sst, _sd in slices:
        for point in (layout.POINT_N3_INGRESS, layout.POINT_N3_EGRESS):
            for kind, kname in layout.MSG_KIND_NAMES.items():
                total = sum(int(c.slice(point, sid, d).msg[kind]) for d in layout.DIRECTION_NAMES)
                out.append(
                    f"sauron_gtpu_messages_total{_labels(slice=sname, point=layout.POINT_NAMES[point], kind=kname)} {total}"
                )
    family(
        "sauron_anomalies_total",
        "counter",
        "Frames per anomaly reason (the first met) and attach point.",
    )
    for point, pname in layout.POINT_NAMES.items():
        for ev, reason in layout.ANOMALY_NAMES.items():
            out.append(
                f"sauron_anomalies_total{_labels(point=pname, reason=reason)} {c.event(point, ev)}"
            )
    latest = engine.history.latest()
    if latest is not None:
        family("sauron_active_teids", "gauge", "TEIDs that carried traffic in the last interval.")
        for kpis in latest.slices.values():
            out.append(f"sauron_active_teids{_labels(slice=kpis.name)} {kpis.active_teids}")
        family(
            "sauron_active_ues", "gauge", "UE addresses that carried traffic in the last interval."
        )
        for kpis in latest.slices.values():
            out.append(f"sauron_active_ues{_labels(slice=kpis.name)} {kpis.active_ues}")
        family("sauron_throughput_mbps", "gauge", "Delivered throughput in the last interval.")
        for kpis in latest.slices.values():
            for dname in ("uplink", "downlink"):
                out.append(
                    f"sauron_throughput_mbps{_labels(slice=kpis.name, direction=dname)} {getattr(kpis, dname).mbps:.6f}"
                )
    family("sauron_sla_violated", "gauge", "1 while a violation of the slice's SLA is open.")
    for s in catalog.slices:
        out.append(
            f"sauron_sla_violated{_labels(slice=s.name)} {int(engine.sla.status(s.name) == 'violated')}"
        )
    return "\n".join(out) + "\n"
