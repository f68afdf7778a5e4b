"""The engine's families (sauron.export.families) as the OpenTelemetry
SDK's MetricsData, which the official OTLP exporter encodes and sends.

The data is already aggregated (counts read from the BPF maps, bucket
counts of the data path's histograms), so it is not replayed through SDK
instruments, which aggregate observations: it becomes the SDK's data points
as it is. Counters are cumulative monotonic Sums, levels Gauges, latencies
explicit-bucket Histograms with every bound of the data path's geometry
(sauron.abi.histogram) in seconds and its exact count per bucket.

Names are the families' (Prometheus's) without the `_total` counters carry,
with the unit their name says in UCUM (`s`, `By`, `J`, `W`): the
Collector's Prometheus exporters add `_total` to a monotonic Sum and the
unit's word when the name lacks it (OpenTelemetry's Prometheus
compatibility rules), so what reaches Prometheus through the Collector has
the names /metrics has, and the rules and dashboards work on either path."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from sauron import __version__
from sauron.abi.histogram import Geometry
from sauron.abi.histogram import Histogram as AgentHistogram
from sauron.export.families import NS_PER_S, Family

#: the instrumentation scope of every metric: the agent
SCOPE = InstrumentationScope("sauron", __version__)
#: a family name's last word -> its unit in UCUM, as OpenTelemetry writes units
UNITS = {"seconds": "s", "bytes": "By", "joules": "J", "watts": "W"}


def metric_name(family: Family) -> str:
    """The family's name as an OpenTelemetry metric: a counter's without
    `_total`, which the Prometheus side adds back to a monotonic Sum."""
    if family.kind == "counter":
        return family.name.removesuffix("_total")
    return family.name


def metric_unit(family: Family) -> str:
    """The unit the name ends with (before `_total`); "" when it names none,
    since a unit the name lacks would be appended to it in Prometheus."""
    last = metric_name(family).rsplit("_", 1)[-1]
    return UNITS.get(last, "")


def explicit_bounds(geometry: Geometry) -> list[float]:
    """Every finite upper bound of the geometry's buckets, in seconds: one
    fewer than its buckets, the last bucket being the overflow."""
    return [geometry.upper(i) / NS_PER_S for i in range(geometry.overflow)]


def histogram_point(
    labels: dict[str, str], h: AgentHistogram, start_ns: int, time_ns: int
) -> HistogramDataPoint:
    """The agent's histogram as it is: bucket by bucket, its sum in seconds;
    its largest value when it has one (no smallest is kept)."""
    return HistogramDataPoint(
        attributes=labels,
        start_time_unix_nano=start_ns,
        time_unix_nano=time_ns,
        count=sum(h.buckets),
        sum=h.total / NS_PER_S,
        bucket_counts=list(h.buckets),
        explicit_bounds=explicit_bounds(h.geometry),
        min=None,  # type: ignore[arg-type]  # optional in OTLP: not known
        max=h.maximum / NS_PER_S if h.maximum else None,  # type: ignore[arg-type]
    )


def metric(family: Family, start_ns: int, time_ns: int) -> Metric:
    """One family as one metric, every series a data point at `time_ns`;
    cumulative ones counted since `start_ns`."""
    numbers = [
        NumberDataPoint(labels, start_ns, time_ns, value) for labels, value in family.samples
    ]
    data: Sum | Gauge | Histogram
    if family.kind == "counter":
        data = Sum(numbers, AggregationTemporality.CUMULATIVE, is_monotonic=True)
    elif family.kind == "gauge":
        data = Gauge(numbers)
    else:
        points = [histogram_point(labels, h, start_ns, time_ns) for labels, h in family.histograms]
        data = Histogram(points, AggregationTemporality.CUMULATIVE)
    return Metric(metric_name(family), family.help, metric_unit(family), data)


def resource(node: str, service_name: str, attributes: dict[str, str]) -> Resource:
    """The agent as OpenTelemetry names a producer: service.name (the
    configured one, `sauron` by default), its version, the node as
    service.instance.id and host.name, the configured attributes; the
    environment's (OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME) win."""
    base: dict[str, str] = {
        "service.name": service_name,
        "service.version": __version__,
        "service.instance.id": node,
        "host.name": node,
        **attributes,
    }
    return Resource(base).merge(OTELResourceDetector().detect())


def metrics_data(
    families: Sequence[Family], agent: Resource, start_ns: int, time_ns: int
) -> MetricsData:
    """One export: every family at the interval's end."""
    metrics = [metric(f, start_ns, time_ns) for f in families if f.samples or f.histograms]
    scope = ScopeMetrics(SCOPE, metrics, schema_url="")
    return MetricsData([ResourceMetrics(agent, [scope], schema_url="")])
