"""A clock the test moves by hand: engines take it instead of time.time."""

from __future__ import annotations


class ManualClock:
    def __init__(self, start: float) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t
