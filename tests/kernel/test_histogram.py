"""Histogram geometry: the bucket the BPF code computes equals the Python
definition for every value tried, and percentiles of merged buckets stay
within the stated error of the exact percentile of the samples."""

from __future__ import annotations

import ctypes
import math
import random
import struct
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sauron.abi import layout
from sauron.abi.histogram import GAP, LATENCY, Geometry, Histogram, merge, percentile
from sauron.bpf import libbpf
from sauron.bpf.loader import XDP, BpfObject


@pytest.fixture(scope="module")
def probe() -> Iterator[BpfObject]:
    obj = BpfObject(["histogram_probe.c"])
    yield obj
    obj.close()


def bpf_buckets(probe: BpfObject, values: list[int]) -> list[tuple[int, int]]:
    fd = int(probe.function("histogram_probe", XDP).fd)
    out = probe.table("probe_out")
    result: list[tuple[int, int]] = []
    for value in values:
        # the kernel wants at least an Ethernet header's worth of frame
        libbpf.test_run(fd, struct.pack("<Q", value) + bytes(8))
        word = int(out[ctypes.c_uint32(0)].value)
        result.append((word & 0xFFFFFFFF, word >> 32))
    return result


def interesting_values(rng: random.Random) -> list[int]:
    values = [0, 1, 2, 3, 7, 8, 9, 1023, 1024, 1025, 2**36 - 1, 2**36, 2**63, 2**64 - 1]
    for shift in range(0, 64):
        base = 1 << shift
        values += [base - 1, base, base + 1, base + base // 8, base + base // 2]
    values += [rng.getrandbits(rng.randint(1, 64)) for _ in range(3000)]
    return [v & (2**64 - 1) for v in values]


@pytest.mark.kernel
def test_bpf_buckets_equal_the_python_definition(probe: BpfObject) -> None:
    values = interesting_values(random.Random(5))
    got = bpf_buckets(probe, values)
    want = [(LATENCY.bucket(v), GAP.bucket(v)) for v in values]
    mismatches = [(v, g, w) for v, g, w in zip(values, got, want, strict=True) if g != w]
    assert not mismatches, mismatches[:5]


def test_geometry_matches_the_header() -> None:
    assert LATENCY.buckets == layout.LATENCY_BUCKETS
    assert GAP.buckets == layout.GAP_BUCKETS
    assert LATENCY.upper(0) == 1024  # 1.024 us: the first regular bucket
    assert LATENCY.lower(LATENCY.overflow) >= 60e9  # at least 60 s before overflow


@pytest.mark.parametrize("geometry", [LATENCY, GAP], ids=["latency", "gap"])
def test_every_value_lies_in_its_bucket(geometry: Geometry) -> None:
    rng = random.Random(1)
    for v in [rng.getrandbits(rng.randint(1, 40)) for _ in range(20000)]:
        b = geometry.bucket(v)
        assert geometry.lower(b) <= v < geometry.upper(b)
    for b in range(1, geometry.overflow):
        # at most 1/8 of the lower bound wide
        assert geometry.upper(b) - geometry.lower(b) <= geometry.lower(b) / 8 + 1e-9


def exact_percentile(samples: list[int], q: float) -> int:
    ordered = sorted(samples)
    rank = max(1, math.ceil(round(q * len(ordered), 9)))
    return ordered[min(rank, len(ordered)) - 1]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(min_value=1, max_value=60_000_000_000), min_size=1, max_size=200),
        min_size=1,
        max_size=5,
    ),
    st.sampled_from([0.5, 0.9, 0.99, 0.999, 1.0]),
)
def test_percentiles_of_merged_histograms_within_the_bucket_error(
    parts: list[list[int]], q: float
) -> None:
    """Histograms of several nodes summed bucket by bucket, then the
    percentile: within the reported error of the exact one."""
    hists = []
    for samples in parts:
        h = Histogram(LATENCY)
        for v in samples:
            h.record(v)
        hists.append(h)
    merged = merge(hists)
    everything = [v for samples in parts for v in samples]
    assert merged.count == len(everything)
    assert merged.maximum == max(everything)
    estimate = merged.percentile(q)
    assert estimate is not None
    exact = exact_percentile(everything, q)
    assert abs(estimate.value - exact) <= estimate.error + 1e-6
    # the error is at most 1/16 of the value (half of a 1/8-wide bucket)
    assert estimate.error <= estimate.value / 16 + 1024


def test_percentile_of_empty_is_none() -> None:
    assert percentile(LATENCY, [0] * LATENCY.buckets, 0.5) is None
    with pytest.raises(ValueError):
        percentile(LATENCY, [1] * LATENCY.buckets, 0)
