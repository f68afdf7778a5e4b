"""Ground-truth counters the testbed's nodes keep and write out: what was
sent, received, forwarded and dropped, per slice and TEID, and why."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any


class Tally:
    """counts[slice][counter] and per_teid[teid][counter], packets and bytes."""

    def __init__(self) -> None:
        self.slices: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.teids: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.other: dict[str, int] = defaultdict(int)
        #: more to write beside the counts, asked for at the end
        self.extra: Callable[[], dict[str, Any]] = dict

    def add(self, slice_name: str, teid: int, counter: str, nbytes: int) -> None:
        self.slices[slice_name][counter] += 1
        self.slices[slice_name][counter + "_bytes"] += nbytes
        self.teids[teid][counter] += 1
        self.teids[teid][counter + "_bytes"] += nbytes

    def note(self, counter: str) -> None:
        self.other[counter] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "slices": {k: dict(v) for k, v in self.slices.items()},
            "teids": {f"0x{k:08x}": dict(v) for k, v in self.teids.items()},
            "other": dict(self.other),
        }

    def write(self, path: Path, extra: dict[str, Any] | None = None) -> None:
        path.write_text(json.dumps({**self.as_dict(), **(extra or {})}, indent=2, sort_keys=True))
