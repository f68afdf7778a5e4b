"""Latency and loss KPIs of one interval, from two readings of the
measurement maps: percentiles with their error bound and the samples behind
them, and loss ratios per source (transit stamps, GTP-U sequence numbers,
TCP retransmissions) with the counts behind them."""

from __future__ import annotations

from dataclasses import dataclass, field

from sauron.abi import layout
from sauron.abi.histogram import GAP, LATENCY, QUANTILES, Histogram
from sauron.bpf.maps import DataPlaneCounters, delta

NS_PER_MS = 1e6


@dataclass
class LatencyKpis:
    """Percentiles in milliseconds from the interval's bucket counts; each
    with `error_ms`, how far the true percentile can lie from it."""

    samples: int = 0
    mean_ms: float | None = None
    max_ms: float | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    p999_ms: float | None = None
    error_ms: dict[str, float] = field(default_factory=dict)
    #: raw bucket counts (non-zero ones, by bucket index): histograms of
    #: several nodes or intervals add bucket by bucket
    buckets: dict[int, int] = field(default_factory=dict)
    sum_ns: int = 0

    @classmethod
    def from_histogram(cls, h: Histogram) -> LatencyKpis:
        k = cls(samples=h.count, buckets=h.nonzero(), sum_ns=h.total)
        if h.count <= 0:
            return cls()
        k.mean_ms = h.total / h.count / NS_PER_MS
        top = max(k.buckets)
        upper = LATENCY.upper(top)
        k.max_ms = min(upper, float(h.maximum) if h.maximum else upper) / NS_PER_MS
        for name, q in QUANTILES:
            est = h.percentile(q)
            if est is not None:
                setattr(k, f"{name}_ms", est.value / NS_PER_MS)
                k.error_ms[name] = est.error / NS_PER_MS
        return k

    def histogram(self) -> Histogram:
        buckets = [0] * LATENCY.buckets
        for index, n in self.buckets.items():
            buckets[int(index)] = n
        maximum = int(self.max_ms * NS_PER_MS) if self.max_ms is not None else 0
        return Histogram(LATENCY, buckets, self.samples, self.sum_ns, maximum)


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole > 0 else None


@dataclass
class LossKpis:
    """Loss seen three ways; a ratio is None when nothing was measured."""

    #: sampled packets that entered the UPF and never left (stamps expired)
    transit_lost: int = 0
    #: sampled packets whose fate is known (left, or expired)
    transit_resolved: int = 0
    transit_ratio: float | None = None
    #: GTP-U sequence numbers passed over / expected, on arrival at the UPF
    sequence_lost: int = 0
    sequence_received: int = 0
    sequence_ratio: float | None = None
    sequence_reordered: int = 0
    sequence_duplicates: int = 0
    #: inner TCP segments sent again
    tcp_retransmissions: int = 0
    tcp_segments: int = 0
    tcp_retransmission_ratio: float | None = None
    #: sizes of the GTP-U sequence gaps (packets lost in a row), as raw
    #: bucket counts of the GAP geometry (non-zero ones, by bucket index)
    burst_buckets: dict[int, int] = field(default_factory=dict)

    def bursts(self) -> Histogram:
        """The burst sizes as a histogram (their sum and maximum are not kept)."""
        h = Histogram(GAP)
        for index, n in self.burst_buckets.items():
            h.buckets[int(index)] += n
            h.count += n
        return h

    def settle_ratios(self) -> None:
        """The ratios from the counts."""
        self.transit_ratio = ratio(self.transit_lost, self.transit_resolved)
        self.sequence_ratio = ratio(self.sequence_lost, self.sequence_lost + self.sequence_received)
        self.tcp_retransmission_ratio = ratio(self.tcp_retransmissions, self.tcp_segments)


def interval_histogram(
    now: DataPlaneCounters, before: DataPlaneCounters, key: tuple[int, int, int]
) -> Histogram:
    current = now.latency.get(key)
    if current is None:
        return Histogram(LATENCY)
    earlier = before.latency.get(key)
    if earlier is None or earlier.count > current.count:
        return current  # first reading, or the map was reset
    return current.minus(earlier)


def latency_kpis(
    now: DataPlaneCounters, before: DataPlaneCounters, metric: int, slice_id: int, direction: int
) -> LatencyKpis:
    return LatencyKpis.from_histogram(
        interval_histogram(now, before, (metric, slice_id, direction))
    )


def loss_kpis(
    now: DataPlaneCounters, before: DataPlaneCounters, slice_id: int, direction: int
) -> LossKpis:
    zero = layout.MeasureStats()
    m_now = now.measure.get((slice_id, direction), zero)
    m_before = before.measure.get((slice_id, direction), zero)

    def grown(name: str) -> int:
        return delta(int(getattr(m_now, name)), int(getattr(m_before, name)))

    key = (slice_id, direction)
    lost = delta(now.transit_expired.get(key, 0), before.transit_expired.get(key, 0))
    k = LossKpis(
        transit_lost=lost,
        transit_resolved=grown("transit_matched") + lost,
        sequence_lost=grown("seq_lost"),
        sequence_received=grown("seq_received"),
        sequence_reordered=grown("seq_reordered"),
        sequence_duplicates=grown("seq_duplicates"),
        tcp_retransmissions=grown("tcp_retransmissions"),
        tcp_segments=grown("tcp_data_segments"),
    )
    # a slice without measurement counters now has no gaps to count
    if key in now.measure:
        gaps_now, gaps_before = list(m_now.seq_gaps), list(m_before.seq_gaps)
        for i in range(GAP.buckets):
            grew = delta(gaps_now[i], gaps_before[i])
            if grew:
                k.burst_buckets[i] = grew
    k.settle_ratios()
    return k


def add_loss(total: LossKpis, part: LossKpis) -> None:
    for name in (
        "transit_lost",
        "transit_resolved",
        "sequence_lost",
        "sequence_received",
        "sequence_reordered",
        "sequence_duplicates",
        "tcp_retransmissions",
        "tcp_segments",
    ):
        setattr(total, name, getattr(total, name) + getattr(part, name))
    for index, n in part.burst_buckets.items():
        total.burst_buckets[index] = total.burst_buckets.get(index, 0) + n
    total.settle_ratios()


def merge_latency(parts: list[LatencyKpis]) -> LatencyKpis:
    hists = [p.histogram() for p in parts if p.samples]
    if not hists:
        return LatencyKpis()
    total = hists[0]
    for h in hists[1:]:
        total.add(h)
    return LatencyKpis.from_histogram(total)
