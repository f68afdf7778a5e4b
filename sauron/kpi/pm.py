"""The 3GPP names of what Sauron measures per slice: TS 28.552's UPF N3
measurements per S-NSSAI (clause 5.4.1) and TS 28.554's energy efficiency
of a network slice (clause 6.7.2.2). The one owner of those names, their
clauses and units: the REST view (/api/v1/pm) reads them here, and
docs/3gpp.md lists them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sauron.kpi.records import N3Volume

BITS_PER_OCTET = 8


@dataclass(frozen=True)
class N3Measurement:
    """A TS 28.552 measurement Sauron counts as the spec defines it."""

    name: str
    clause: str
    unit: str
    value: Callable[[N3Volume], int]


N3_MEASUREMENTS: tuple[N3Measurement, ...] = (
    N3Measurement(
        "GTP.InDataPktN3UPF.SNSSAI", "TS 28.552 §5.4.1.1", "packets", lambda v: v.g_pdus_in
    ),
    N3Measurement(
        "GTP.OutDataPktN3UPF.SNSSAI", "TS 28.552 §5.4.1.2", "packets", lambda v: v.g_pdus_out
    ),
    N3Measurement(
        "GTP.InDataOctN3UPF.SNSSAI", "TS 28.552 §5.4.1.3", "octets", lambda v: v.octets_in
    ),
    N3Measurement(
        "GTP.OutDataOctN3UPF.SNSSAI", "TS 28.552 §5.4.1.4", "octets", lambda v: v.octets_out
    ),
)

#: TS 28.554's energy efficiency of a network slice: the UL and DL data
#: volume on N3 over the slice's energy consumption. The spec gives this KPI
#: a title, not a dotted measurement name: the title is its name here
EE_NAME = "Energy efficiency of eMBB network slice"
EE_CLAUSE = "TS 28.554 §6.7.2.2"
EE_UNIT = "bit/J"


def energy_efficiency(volume: N3Volume, joules: float) -> float | None:
    """Bits of N3 data (both directions) per joule; None without energy."""
    if joules <= 0:
        return None
    return volume.octets * BITS_PER_OCTET / joules
