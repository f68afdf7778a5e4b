"""The KPIs, one row each: the one owner of a KPI's name, unit, shape and
its name in every export.

The engine measures what this table lists, the history averages it, the
SLA checks it, and the REST schemas, InfluxDB points, Prometheus families,
CLI columns, dashboard and Grafana panels show it by reading these rows, not
by listing fields of their own. A KPI has one name everywhere (REST field,
histogram route, InfluxDB field or `metric` tag, dashboard); where an
export's convention needs a unit in the name, the row says that name too
(Prometheus in seconds, the catalog's SLA targets in milliseconds).

Adding a latency KPI is a row in LATENCY_KPIS plus the data path that fills
its histogram (its id `SAURON_LAT_<NAME>` in sauron_shared.h and the C that
records it); every layer above picks it up from here."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from sauron.abi import layout
from sauron.abi.histogram import LATENCY, Geometry

UPLINK, DOWNLINK = "uplink", "downlink"
DIRECTIONS = (UPLINK, DOWNLINK)


#: "transit" -> SAURON_LAT_TRANSIT's value, ...
_METRIC_IDS = {name: metric for metric, name in layout.LATENCY_METRIC_NAMES.items()}


class Aggregate(Enum):
    """How a traffic KPI of many intervals becomes one (the history's
    coarser steps, a window of the REST API)."""

    #: a count: the intervals' values add
    SUM = "sum"
    #: a rate: recomputed from its count over the whole span
    RATE = "rate"
    #: a level at the end of an interval: the latest one stands
    LAST = "last"


@dataclass(frozen=True)
class TrafficKpi:
    """A number per slice, direction and interval, from the slice counters."""

    #: REST field of a direction, InfluxDB field of `sauron_traffic`
    name: str
    unit: str
    aggregate: Aggregate
    help: str
    #: a rate's count and the factor that turns count per second into the unit
    rate_of: str | None = None
    scale: float = 1.0
    #: whole numbers (counts) rather than real ones (rates)
    integer: bool = True


TRAFFIC_KPIS: tuple[TrafficKpi, ...] = (
    TrafficKpi(
        "packets_in", "packets", Aggregate.SUM, "packets that entered the UPF (N3 in UL, N6 in DL)"
    ),
    TrafficKpi("bytes_in", "bytes", Aggregate.SUM, "bytes that entered the UPF"),
    TrafficKpi("packets_out", "packets", Aggregate.SUM, "packets the UPF delivered"),
    TrafficKpi("bytes_out", "bytes", Aggregate.SUM, "bytes the UPF delivered"),
    TrafficKpi(
        "pps",
        "packets/s",
        Aggregate.RATE,
        "packets delivered per second",
        rate_of="packets_out",
        integer=False,
    ),
    TrafficKpi(
        "mbps",
        "Mbit/s",
        Aggregate.RATE,
        "megabits delivered per second",
        rate_of="bytes_out",
        scale=8 / 1e6,
        integer=False,
    ),
    TrafficKpi(
        "upf_drops",
        "packets",
        Aggregate.SUM,
        "packets that entered the UPF and never left, counted once certain",
    ),
    TrafficKpi(
        "upf_in_flight",
        "packets",
        Aggregate.LAST,
        "packets inside the UPF at the interval's end whose fate is not yet certain",
    ),
    TrafficKpi("malformed", "packets", Aggregate.SUM, "entering packets the parser could not read"),
)


@dataclass(frozen=True)
class LatencyKpi:
    """A latency histogram per slice (and direction) and interval, reported
    as percentiles with their error bound and merged bucket by bucket."""

    #: REST key, histogram route, InfluxDB `metric` tag, dashboard key; the
    #: data path's histogram id is SAURON_LAT_<NAME> in sauron_shared.h
    name: str
    #: short label for tables and charts
    title: str
    help: str
    #: both directions, or the one direction its samples are kept under
    directions: tuple[str, ...]
    #: Prometheus family (seconds, the base unit Prometheus asks for)
    prometheus: str
    #: the catalog's SLA target key (milliseconds)
    sla_key: str
    geometry: Geometry = LATENCY
    unit: str = "ms"

    @property
    def metric(self) -> int:
        """The data path's histogram id, `SAURON_LAT_<NAME>`."""
        return _METRIC_IDS[self.name]

    @property
    def per_direction(self) -> bool:
        """Reported under each direction (else once per slice)."""
        return self.directions == DIRECTIONS


LATENCY_KPIS: tuple[LatencyKpi, ...] = (
    LatencyKpi(
        "transit",
        "transit",
        "time inside the UPF: N3 in to N6 out (uplink), N6 in to N3 out (downlink)",
        DIRECTIONS,
        "sauron_transit_latency_seconds",
        "transit_latency_ms",
    ),
    LatencyKpi(
        "ran_rtt",
        "RAN RTT",
        "round trip UPF to UE and back, from inner TCP seen on N3",
        (DOWNLINK,),
        "sauron_ran_rtt_seconds",
        "ran_rtt_ms",
    ),
    LatencyKpi(
        "dn_rtt",
        "DN RTT",
        "round trip UPF to server and back, from inner TCP seen on N6",
        (UPLINK,),
        "sauron_dn_rtt_seconds",
        "dn_rtt_ms",
    ),
    LatencyKpi(
        "transit_jitter",
        "jitter",
        "difference between the transit times of consecutive samples of the slice"
        " and direction on one CPU (delay variation, RFC 5481's IPDV)",
        DIRECTIONS,
        "sauron_transit_jitter_seconds",
        "transit_jitter_ms",
    ),
)

#: the latency KPIs reported under each direction, and those once per slice
DIRECTION_LATENCY = tuple(k for k in LATENCY_KPIS if k.per_direction)
SLICE_LATENCY = tuple(k for k in LATENCY_KPIS if not k.per_direction)
LATENCY_BY_NAME = {k.name: k for k in LATENCY_KPIS}

#: the histogram of GTP-U sequence gaps (packets lost in a row), per direction
LOSS_BURST = "loss_burst"

assert {k.name for k in LATENCY_KPIS} == set(_METRIC_IDS), (
    "one LATENCY_KPIS row per SAURON_LAT_* id of sauron_shared.h: "
    f"rows {sorted(k.name for k in LATENCY_KPIS)}, ids {sorted(_METRIC_IDS)}"
)


@dataclass(frozen=True)
class SecurityKpi:
    """A security check's count per slice and interval: uplink G-PDUs at
    N3/N9 that failed it (sauron.bpf.security). One name everywhere: the
    REST key, the `kind` label of SECURITY_FAMILY, the InfluxDB field of
    SECURITY_MEASUREMENT, the catalog's per-kind limit under SECURITY_SLA_KEY."""

    #: the data path's kind, `SAURON_SEC_<NAME>` in sauron_shared.h
    name: str
    title: str
    help: str
    unit: str = "frames"


SECURITY_KPIS: tuple[SecurityKpi, ...] = (
    SecurityKpi(
        "ue_source_spoofed",
        "spoofed UE source",
        "inner source not an address of the TEID's session (or, for a TEID of no"
        " known session, outside its slice's UE subnets)",
    ),
    SecurityKpi(
        "unknown_teid",
        "unknown TEID",
        "TEID of no learned session and no catalog TEID rule",
    ),
    SecurityKpi(
        "gtp_in_gtp",
        "GTP in GTP",
        "inner UDP to or from port 2152 or 2123 carrying a GTP header",
    ),
    SecurityKpi(
        "inner_to_core",
        "to the core",
        "inner destination in a protected prefix (the core's own networks)",
    ),
    SecurityKpi(
        "unknown_peer",
        "unknown peer",
        "outer source not a known gNB or peer UPF (counted only when a list exists)",
    ),
)
SECURITY_BY_NAME = {k.name: k for k in SECURITY_KPIS}
#: the Prometheus counter of SECURITY_KPIS, labelled by `kind`
SECURITY_FAMILY = "sauron_security_events_total"
#: the InfluxDB measurement of the per-interval counts, a field per kind
SECURITY_MEASUREMENT = "sauron_security"
#: the catalog's SLA key: a limit per kind, in frames per second
SECURITY_SLA_KEY = "max_security_events_per_s"

assert [k.name for k in SECURITY_KPIS] == [
    layout.SECURITY_KIND_NAMES[i] for i in range(layout.SEC_KINDS)
], "one SECURITY_KPIS row per SAURON_SEC_* kind of sauron_shared.h, in the kinds' order"
