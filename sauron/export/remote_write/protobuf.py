"""The remote write 1.0 request body before compression: a protobuf
WriteRequest (prometheus/prompb types.proto) written by hand, since it
needs four messages and two wire types:

    WriteRequest {1: repeated TimeSeries}
    TimeSeries   {1: repeated Label, 2: repeated Sample}
    Label        {1: string name, 2: string value}
    Sample       {1: double value, 2: int64 timestamp (ms)}

Series carry their labels sorted by name (`__name__` among them) and their
samples oldest first, as the protocol asks. A label with an empty value is
left out: to Prometheus it is no label (a scrape stores it so), and a
receiver may refuse it."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence

from sauron.export.remote_write.samples import Sample

_U64 = (1 << 64) - 1


def varint(n: int) -> bytes:
    """An unsigned varint; a negative int64 as its two's complement (ten bytes)."""
    n &= _U64
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def _label(name: str, value: str) -> bytes:
    return _field(1, name.encode()) + _field(2, value.encode())


def _sample(value: float, time_ms: int) -> bytes:
    return b"\x09" + struct.pack("<d", value) + b"\x10" + varint(time_ms)


def time_series(labels: Sequence[tuple[str, str]], points: Iterable[tuple[int, float]]) -> bytes:
    """Of two labels with one name, the later is kept."""
    named = dict(labels)
    body = b"".join(_field(1, _label(k, v)) for k, v in sorted(named.items()) if v)
    body += b"".join(_field(2, _sample(value, ms)) for ms, value in sorted(points))
    return body


def write_request(samples: Iterable[Sample], extra: Mapping[str, str] | None = None) -> bytes:
    """The samples grouped into one TimeSeries per label set, with the
    `extra` labels its own labels do not name; a sample given twice (the
    same series and time: a journal replayed after its batch was written)
    is sent once, as a receiver may refuse a duplicate."""
    series: dict[tuple[tuple[str, str], ...], dict[int, float]] = {}
    for s in samples:
        series.setdefault(s.labels, {})[s.time_ms] = s.value
    added = list((extra or {}).items())
    return b"".join(
        _field(1, time_series([*added, *labels], pts.items())) for labels, pts in series.items()
    )
