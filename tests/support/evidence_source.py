"""The data path's evidence ring as sauron.diagnosis.evidence's keeper sees
it: frames copied only for the slices flagged, drained by frames()."""

from __future__ import annotations

from collections.abc import Iterable

from sauron.bpf.evidence import EvidenceFrame

#: the first frame's time (unix ns); frame n is n microseconds later
T0 = 1_764_000_000 * 10**9


class Frames:
    """The data path's ring as the keeper sees it."""

    def __init__(self) -> None:
        self.flagged: set[int] = set()
        self.pending: list[EvidenceFrame] = []
        self.closed = False

    def capture(self, slice_ids: Iterable[int]) -> None:
        self.flagged = set(slice_ids)

    def send(
        self, slice_id: int, count: int, first: int = 0, size: int = 128, direction: int = 0
    ) -> None:
        """`count` frames, the n-th's bytes all n; uplink unless told."""
        for n in range(first, first + count):
            if slice_id in self.flagged:
                data = bytes([n % 256]) * size
                point = 1 if direction else 0  # N3 egress carries the downlink
                frame = EvidenceFrame(
                    T0 + n * 1000, 1400, slice_id, 0x20000 + n, point, direction, data
                )
                self.pending.append(frame)

    def frames(self) -> list[EvidenceFrame]:
        found, self.pending = self.pending, []
        return found

    def missed(self) -> int:
        return 7

    def close(self) -> None:
        self.closed = True
