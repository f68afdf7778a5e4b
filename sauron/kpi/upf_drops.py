"""Packets the UPF dropped: those that entered it and never left.

Packets in minus packets out of one interval is not that: a packet that
enters near the end of an interval and leaves early in the next is counted
in and not out, and would look dropped although nothing was lost. So each
slice and direction keeps a ledger of the packets still inside the UPF,
by the interval they entered in: packets out retire the oldest first, and
packets still unretired `settle_s` after their interval ended are dropped
for certain (no packet stays inside a UPF that long; the same bound expires
an unmatched transit stamp). A drop is thus reported once, when it becomes
certain, up to `settle_s` after the interval the packet entered in.

More packets out than in the ledger (packets that were inside when the
agent started) retire nothing and are forgotten."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class _Entered:
    at: float  # end of the interval the packets entered in
    inside: int  # of them, not yet out


@dataclass
class DropLedger:
    settle_s: float
    _entries: deque[_Entered] = field(default_factory=deque)

    def settle(self, at: float, packets_in: int, packets_out: int) -> int:
        """One interval ending at `at`; returns the packets now certainly
        dropped."""
        if packets_in:
            self._entries.append(_Entered(at, packets_in))
        out = packets_out
        while out and self._entries:
            oldest = self._entries[0]
            taken = min(out, oldest.inside)
            oldest.inside -= taken
            out -= taken
            if not oldest.inside:
                self._entries.popleft()
        dropped = 0
        while self._entries and self._entries[0].at <= at - self.settle_s:
            dropped += self._entries.popleft().inside
        return dropped

    @property
    def in_flight(self) -> int:
        """Packets inside the UPF whose fate is not yet certain."""
        return sum(e.inside for e in self._entries)
