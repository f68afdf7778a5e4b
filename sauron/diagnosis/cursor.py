"""Each diagnosis once: an exporter that writes diagnoses asks, every
interval, for a slice's diagnoses made since it last asked, and is handed
each one exactly once, however many intervals apart it asks.

The history it reads (the agent's, oldest first) is bounded: the oldest
fall off as new ones come. The cursor remembers the last diagnosis it
handed out by identity, not by time (two diagnoses of one interval share
a time, and a clock stepped back would hide the next ones); when that one
has fallen off, every diagnosis the history still holds came after it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sauron.diagnosis.explain import Diagnosed


class DiagnosisCursor:
    """cursor(slice) -> the slice's diagnoses not handed out before, oldest
    first; `history(slice)` gives all of them, oldest first."""

    def __init__(self, history: Callable[[str], Sequence[Diagnosed]]) -> None:
        self.history = history
        self._last: dict[str, Diagnosed] = {}

    def __call__(self, slice_name: str) -> list[Diagnosed]:
        held = list(self.history(slice_name))
        last = self._last.get(slice_name)
        start = 0
        if last is not None:
            for index in range(len(held) - 1, -1, -1):
                if held[index] is last:
                    start = index + 1
                    break
        new = held[start:]
        if new:
            self._last[slice_name] = new[-1]
        return new
