"""Whether the agent is still measuring. The tick and every snapshot
listener report each run here: a failure is logged with its cause and
counted, and the next interval simply tries again (a map read that failed
once, an exporter that raised once, must not stop the measurements for
good). After `unready_after` failures in a row of the same part, /readyz
answers 503 naming the part and the error, so an orchestrator sees a
stalled agent instead of green probes over a frozen `last_interval`.

Each listener is guarded on its own: one that raises stops neither the
tick nor the listeners after it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

log = logging.getLogger(__name__)

#: failures in a row of one part before /readyz says not ready
UNREADY_AFTER = 3
TICK = "tick"
#: a tick still running after this many intervals (and at least
#: HUNG_AT_LEAST_S) is hung: a map or /proc read that never returns fails
#: nothing, so it is told by its age
HUNG_AFTER_INTERVALS = 3
HUNG_AT_LEAST_S = 5.0

T = TypeVar("T")


@dataclass
class PartHealth:
    #: failures since the agent started
    failures: int = 0
    #: failures since the last success
    in_a_row: int = 0
    #: the latest failure's cause ("" once the part succeeds again)
    last_error: str = ""


def describe(exc: BaseException) -> str:
    """The cause as one line: the exception's type and message."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Liveness:
    """Thread-safe: the tick reports from the executor's thread, the
    listeners from the engine's."""

    def __init__(
        self, unready_after: int = UNREADY_AFTER, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.unready_after = unready_after
        self.clock = clock
        self._lock = threading.Lock()
        self.parts: dict[str, PartHealth] = {TICK: PartHealth()}
        #: when the tick running now started (None: none is running)
        self.tick_started: float | None = None
        #: the ticker's interval, once a ticker runs (None: ticks are driven
        #: from outside, and a slow one is the driver's business)
        self.interval_s: float | None = None

    def tick_begins(self) -> None:
        self.tick_started = self.clock()

    def tick_ends(self) -> None:
        self.tick_started = None

    def add(self, part: str) -> None:
        with self._lock:
            self.parts.setdefault(part, PartHealth())

    def succeeded(self, part: str) -> None:
        with self._lock:
            health = self.parts.setdefault(part, PartHealth())
            after, health.in_a_row, health.last_error = health.in_a_row, 0, ""
        if after:
            log.warning("works again", extra={"part": part, "after_failures": after})

    def failed(self, part: str, exc: BaseException) -> None:
        """Logs the failure (the traceback the first time in a row, the
        cause every time) and counts it."""
        cause = describe(exc)
        with self._lock:
            health = self.parts.setdefault(part, PartHealth())
            health.failures += 1
            health.in_a_row += 1
            health.last_error = cause
            in_a_row = health.in_a_row
        extra = {"part": part, "error": cause, "in_a_row": in_a_row}
        if in_a_row == 1:
            log.error("failed, tried again next interval", exc_info=exc, extra=extra)
        else:
            log.error("failed again", extra=extra)

    def guard(self, part: str, listener: Callable[[T], None]) -> Callable[[T], None]:
        """The listener, reporting here and never raising."""
        self.add(part)

        def guarded(value: T) -> None:
            try:
                listener(value)
            except Exception as exc:
                self.failed(part, exc)
            else:
                self.succeeded(part)

        return guarded

    def failures(self) -> dict[str, int]:
        with self._lock:
            return {name: h.failures for name, h in self.parts.items()}

    def problems(self) -> list[str]:
        """Why the agent is not ready: each part failing `unready_after`
        times or more in a row, with its latest cause."""
        with self._lock:
            found = [
                f"{name} failed {h.in_a_row} times in a row: {h.last_error}"
                for name, h in self.parts.items()
                if h.in_a_row >= self.unready_after
            ]
        started, interval = self.tick_started, self.interval_s
        if started is not None and interval is not None:
            running = self.clock() - started
            if running > max(HUNG_AFTER_INTERVALS * interval, HUNG_AT_LEAST_S):
                found.append(f"the tick has not returned for {running:.0f} s")
        return found
