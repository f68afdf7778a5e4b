"""Log-linear histograms, the Python half of the geometry defined in
sauron/bpf/c/include/sauron_shared.h: the bucket of a value, the bounds of a bucket,
merging (across CPUs, intervals or nodes: bucket counts simply add) and
percentiles with the error bound of the bucket they fall in."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sauron.abi import layout


@dataclass(frozen=True)
class Geometry:
    """Buckets [2^min_shift, 2^max_shift) split into SUB_BUCKETS per power
    of two, plus an underflow and an overflow bucket."""

    min_shift: int
    max_shift: int
    sub_bits: int = layout.HIST_SUB_BITS

    @property
    def sub_buckets(self) -> int:
        return 1 << self.sub_bits

    @property
    def buckets(self) -> int:
        return (self.max_shift - self.min_shift) * self.sub_buckets + 2

    @property
    def overflow(self) -> int:
        return self.buckets - 1

    def bucket(self, value: int) -> int:
        if value < 1 << self.min_shift:
            return 0
        if value >= 1 << self.max_shift:
            return self.overflow
        k = value.bit_length() - 1
        sub = ((value << self.sub_bits) >> k) & (self.sub_buckets - 1)
        return 1 + (k - self.min_shift) * self.sub_buckets + sub

    def lower(self, index: int) -> float:
        """The smallest value of a bucket (inclusive)."""
        if index == 0:
            return 0.0
        if index == self.overflow:
            return float(1 << self.max_shift)
        k, sub = divmod(index - 1, self.sub_buckets)
        k += self.min_shift
        return (self.sub_buckets + sub) * 2.0**k / self.sub_buckets

    def upper(self, index: int) -> float:
        """The bound above a bucket (exclusive); infinite for the overflow."""
        if index == self.overflow:
            return float("inf")
        return self.lower(index + 1)


#: nanoseconds, 1.024 us to 68.7 s
LATENCY = Geometry(layout.LATENCY_MIN_SHIFT, layout.LATENCY_MAX_SHIFT)
#: GTP-U sequence gaps, in packets
GAP = Geometry(layout.GAP_MIN_SHIFT, layout.GAP_MAX_SHIFT)

assert LATENCY.buckets == layout.LATENCY_BUCKETS, "sauron_shared.h: SAURON_LATENCY_BUCKETS"
assert GAP.buckets == layout.GAP_BUCKETS, "sauron_shared.h: SAURON_GAP_BUCKETS"

#: the quantiles every latency KPI reports
QUANTILES: tuple[tuple[str, float], ...] = (
    ("p50", 0.50),
    ("p90", 0.90),
    ("p99", 0.99),
    ("p999", 0.999),
)


@dataclass(frozen=True)
class Estimate:
    """A percentile: the middle of its bucket, and how far the true value
    can be from it (half the bucket's width)."""

    value: float
    error: float


@dataclass
class Histogram:
    """Bucket counts of one geometry, with the count, sum and maximum of the
    values recorded (exact, kept beside the buckets)."""

    geometry: Geometry = LATENCY
    buckets: list[int] = field(default_factory=list)
    count: int = 0
    total: int = 0
    maximum: int = 0

    def __post_init__(self) -> None:
        if not self.buckets:
            self.buckets = [0] * self.geometry.buckets
        if len(self.buckets) != self.geometry.buckets:
            raise ValueError(
                f"{len(self.buckets)} buckets for a {self.geometry.buckets}-bucket geometry"
            )

    def record(self, value: int) -> None:
        self.buckets[self.geometry.bucket(value)] += 1
        self.count += 1
        self.total += value
        self.maximum = max(self.maximum, value)

    def add(self, other: Histogram) -> None:
        if other.geometry != self.geometry:
            raise ValueError("histograms of different geometries do not add")
        for i, n in enumerate(other.buckets):
            if n:
                self.buckets[i] += n
        self.count += other.count
        self.total += other.total
        self.maximum = max(self.maximum, other.maximum)

    def minus(self, earlier: Histogram) -> Histogram:
        """The values recorded since `earlier` (a previous reading of the same
        counters). The maximum cannot be taken apart: it stays the running one."""
        return Histogram(
            self.geometry,
            [a - b for a, b in zip(self.buckets, earlier.buckets, strict=True)],
            self.count - earlier.count,
            self.total - earlier.total,
            self.maximum,
        )

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def percentile(self, q: float) -> Estimate | None:
        """The q-quantile (0 < q <= 1) from the buckets, or None when empty."""
        return percentile(self.geometry, self.buckets, q, self.maximum or None)

    def percentiles(self) -> dict[str, Estimate | None]:
        return {name: self.percentile(q) for name, q in QUANTILES}

    def nonzero(self) -> dict[int, int]:
        return {i: n for i, n in enumerate(self.buckets) if n}


def percentile(
    geometry: Geometry, buckets: Sequence[int], q: float, maximum: float | None = None
) -> Estimate | None:
    """The value below which a fraction q of the recorded values lie: the
    bucket holding the ceil(q * n)-th smallest value, estimated by its middle
    (clamped to the maximum when known)."""
    if not 0 < q <= 1:
        raise ValueError("q must be in (0, 1]")
    total = sum(buckets)
    if total <= 0:
        return None
    rank = min(total, max(1, math.ceil(q * total - 1e-9)))
    seen = 0
    for index, n in enumerate(buckets):
        seen += n
        if seen >= rank:
            lo = geometry.lower(index)
            hi = geometry.upper(index)
            if hi == float("inf"):
                hi = max(lo, maximum or lo)
            if maximum is not None:
                hi = min(hi, maximum) if maximum >= lo else hi
            mid = (lo + hi) / 2
            return Estimate(mid, (hi - lo) / 2)
    return None  # pragma: no cover - seen reaches total


def merge(histograms: Iterable[Histogram]) -> Histogram:
    """One histogram from several (CPUs, intervals, nodes): counts add."""
    items = list(histograms)
    out = Histogram(items[0].geometry if items else LATENCY)
    for h in items:
        out.add(h)
    return out
