"""The security findings as documents: counts per slice and kind, and the
detections, in the names and units the rest of Sauron uses (`sauron replay
--json`; the agent's API)."""

from __future__ import annotations

from typing import Any

import numpy as np

from sauron.abi import layout
from sauron.catalog import Catalog
from sauron.security.detect import SecurityEvent


def security_doc(counts: np.ndarray, catalog: Catalog) -> dict[str, dict[str, int]]:
    """{slice name: {kind: count}}, only the kinds that occurred."""
    doc: dict[str, dict[str, int]] = {}
    for slice_id in range(counts.shape[0]):
        kinds = {
            layout.SECURITY_KIND_NAMES[k]: int(counts[slice_id, k])
            for k in range(layout.SEC_KINDS)
            if counts[slice_id, k]
        }
        if kinds:
            doc[catalog.name_of(slice_id)] = kinds
    return doc


def event_doc(e: SecurityEvent, catalog: Catalog) -> dict[str, Any]:
    return {
        "kind": e.kind,
        "slice": catalog.name_of(e.slice_id),
        "peer": e.peer,
        "teids": [f"0x{t:08x}" for t in e.teids],
        "first_seen": e.first_seen,
        "last_seen": e.last_seen,
        "count": e.count,
        "distinct": e.distinct,
    }
