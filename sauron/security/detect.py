"""Detections over the data path's security observations: a TEID scan (one
outer source sending to many distinct unknown TEIDs within a second) and a
spoofing UE (one session sending from many sources it does not own within a
second).

One Detector for the agent, fed each interval what the data path noted, and
for a replay, fed every observation at the capture's own time. An event
opens when a window holds the threshold; from then on every observation of
the same source (a scan) or TEID (a spoofing UE) adds to it, however slow,
until none came for `quiet_s`: the event ends, and a later burst is a new
event. So a scan that runs for minutes is one event, not one per interval."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from sauron.abi import layout
from sauron.bpf.security import Seen
from sauron.security.thresholds import QUIET_S, SCAN_THRESHOLD, SPOOF_THRESHOLD, WINDOW_S

TEID_SCAN, SPOOFING_UE = "teid_scan", "spoofing_ue"
#: TEIDs an event lists (the first ones seen)
LISTED = 8
#: distinct TEIDs or sources an event tells exactly; past it, `distinct`
#: stays at this bound (memory stays bounded under a scan of every TEID)
DISTINCT_KEPT = 65536
#: ended events kept for the API, the newest
ENDED_KEPT = 1000


@dataclass(frozen=True)
class Observation:
    """A kind seen for one TEID and address: the outer source of an unknown
    TEID's frames, or a spoofed inner source."""

    kind: int  # layout.SEC_*
    teid: int
    address: str
    peer: str  # the outer source
    slice_id: int
    first_s: float
    last_s: float
    count: int


def observation(seen: Seen, first_s: float, last_s: float) -> Observation:
    """A data-path entry (sauron.bpf.security.drain_seen) at unix times."""
    return Observation(
        kind=seen.kind,
        teid=seen.teid,
        address=str(seen.address),
        peer=str(seen.peer),
        slice_id=seen.slice_id,
        first_s=first_s,
        last_s=last_s,
        count=seen.count,
    )


@dataclass(frozen=True)
class SecurityEvent:
    kind: str
    slice_id: int
    peer: str
    teids: tuple[int, ...]
    first_seen: float
    last_seen: float
    #: frames of the detection
    count: int
    #: distinct TEIDs (a scan) or sources (a spoofing UE), at most DISTINCT_KEPT
    distinct: int
    #: the detector's number for it: the same event keeps it while it grows
    id: int = 0
    #: still growing: ends after `quiet_s` without an observation
    ongoing: bool = False


#: kind of observation -> (detection, the field an event is per, the field
#: whose distinct values count)
_DETECTIONS = {
    layout.SEC_UNKNOWN_TEID: (TEID_SCAN, "address", "teid"),
    layout.SEC_UE_SOURCE_SPOOFED: (SPOOFING_UE, "teid", "address"),
}


def windowed(rows: list[Observation], threshold: int, distinct_of: str) -> list[Observation]:
    """The rows from the first window of WINDOW_S holding `threshold`
    distinct values of `distinct_of` on (all rows after it included); none
    when no window holds that many."""
    rows = sorted(rows, key=lambda r: r.first_s)
    for start, first in enumerate(rows):
        values: set[object] = set()
        for row in itertools.islice(rows, start, None):
            if row.first_s - first.first_s > WINDOW_S:
                break
            values.add(getattr(row, distinct_of))
            if len(values) >= threshold:
                return rows[start:]
    return []


@dataclass
class _Tracked:
    """An open event, grown by each observation of its source or TEID."""

    id: int
    kind: str
    distinct_of: str
    first_seen: float
    last_seen: float = 0.0
    peer: str = ""
    count: int = 0
    teids: list[int] = field(default_factory=list)
    values: set[object] = field(default_factory=set)
    frames_by_slice: Counter[int] = field(default_factory=Counter)
    #: the slice most of its frames were in when it opened: kept while it
    #: grows, so the event stays one series in the exports
    slice_id: int | None = None

    def add(self, o: Observation) -> None:
        self.count += o.count
        self.frames_by_slice[o.slice_id] += o.count
        if o.last_s >= self.last_seen:
            self.last_seen, self.peer = o.last_s, o.peer
        self.first_seen = min(self.first_seen, o.first_s)
        if len(self.teids) < LISTED and o.teid not in self.teids:
            self.teids.append(o.teid)
        if len(self.values) < DISTINCT_KEPT:
            self.values.add(getattr(o, self.distinct_of))

    def event(self, ongoing: bool) -> SecurityEvent:
        return SecurityEvent(
            kind=self.kind,
            slice_id=(
                self.slice_id
                if self.slice_id is not None
                else max(self.frames_by_slice, key=lambda s: self.frames_by_slice[s])
            ),
            peer=self.peer,
            teids=tuple(self.teids),
            first_seen=self.first_seen,
            last_seen=self.last_seen,
            count=self.count,
            distinct=len(self.values),
            id=self.id,
            ongoing=ongoing,
        )


class Detector:
    """Observations in, events out. `feed` takes what one interval (or one
    frame of a replay) observed and returns the events that opened, grew
    or ended; `events()` is every event kept, oldest first. Observations
    not (yet) part of an event are held for `retain_s` (at least a window
    and the interval that reads them), then forgotten."""

    def __init__(
        self,
        scan_threshold: int = SCAN_THRESHOLD,
        spoof_threshold: int = SPOOF_THRESHOLD,
        quiet_s: float = QUIET_S,
        retain_s: float = 2 * WINDOW_S,
    ) -> None:
        self.thresholds = {TEID_SCAN: scan_threshold, SPOOFING_UE: spoof_threshold}
        self.quiet_s = quiet_s
        self.retain_s = max(retain_s, WINDOW_S)
        self._pending: defaultdict[tuple[str, object], list[Observation]] = defaultdict(list)
        self._open: dict[tuple[str, object], _Tracked] = {}
        self._ended: deque[SecurityEvent] = deque(maxlen=ENDED_KEPT)
        self._last_id = 0
        #: (slice id, detection) -> events opened since the detector began
        self.opened: Counter[tuple[int, str]] = Counter()

    def feed(self, observations: Iterable[Observation], now: float) -> list[SecurityEvent]:
        changed: dict[int, _Tracked] = {}
        ended: list[SecurityEvent] = []
        for o in sorted(observations, key=lambda o: o.first_s):
            known = _DETECTIONS.get(o.kind)
            if known is None:
                continue
            kind, per, _ = known
            identity = (kind, getattr(o, per))
            tracked = self._open.get(identity)
            if tracked is not None and o.first_s - tracked.last_seen > self.quiet_s:
                ended.append(self._end(identity))  # quiet before this one
                changed.pop(tracked.id, None)
                tracked = None
            if tracked is not None:
                tracked.add(o)
                changed[tracked.id] = tracked
            else:
                self._pending[identity].append(o)
        for identity in list(self._pending):
            tracked = self._detect(identity, self._pending[identity])
            if tracked is not None:
                del self._pending[identity]
                self._open[identity] = tracked
                changed[tracked.id] = tracked
        events = ended + self._end_quiet(now)
        events += [
            t.event(ongoing=True) for t in changed.values() if t.id not in {e.id for e in events}
        ]
        self._forget_pending(now)
        return sorted(events, key=lambda e: (e.first_seen, e.kind, e.peer))

    def _detect(self, identity: tuple[str, object], rows: list[Observation]) -> _Tracked | None:
        kind = identity[0]
        distinct_of = next(d for k, _, d in _DETECTIONS.values() if k == kind)
        rows = windowed(rows, self.thresholds[kind], distinct_of)
        if not rows:
            return None
        self._last_id += 1
        tracked = _Tracked(self._last_id, kind, distinct_of, rows[0].first_s)
        for row in rows:
            tracked.add(row)
        tracked.slice_id = tracked.event(ongoing=True).slice_id
        self.opened[(tracked.slice_id, kind)] += 1
        return tracked

    def _end(self, identity: tuple[str, object]) -> SecurityEvent:
        event = self._open.pop(identity).event(ongoing=False)
        self._ended.append(event)
        return event

    def _end_quiet(self, now: float) -> list[SecurityEvent]:
        quiet = [i for i, t in self._open.items() if now - t.last_seen > self.quiet_s]
        return [self._end(identity) for identity in quiet]

    def _forget_pending(self, now: float) -> None:
        for identity in list(self._pending):
            rows = [r for r in self._pending[identity] if now - r.last_s <= self.retain_s]
            if rows:
                self._pending[identity] = rows
            else:
                del self._pending[identity]

    def end_all(self) -> list[SecurityEvent]:
        """Ends every open event (a replay's capture is over)."""
        ended = [t.event(ongoing=False) for t in self._open.values()]
        self._ended.extend(ended)
        self._open.clear()
        return ended

    def events(self) -> list[SecurityEvent]:
        """The ended events kept and the open ones, by first seen."""
        both = [*self._ended, *(t.event(ongoing=True) for t in self._open.values())]
        return sorted(both, key=lambda e: (e.first_seen, e.kind, e.peer))


def detect(
    observations: Iterable[Observation],
    scan_threshold: int = SCAN_THRESHOLD,
    spoof_threshold: int = SPOOF_THRESHOLD,
) -> list[SecurityEvent]:
    """Every scan (per outer source) and spoofing UE (per TEID) that
    observations all made by now hold, oldest first (a replay's)."""
    rows = sorted(observations, key=lambda o: o.first_s)
    detector = Detector(scan_threshold, spoof_threshold)
    # a second of the capture at a time, as the agent's intervals feed it
    for _, second in itertools.groupby(rows, key=lambda o: int(o.first_s)):
        batch = list(second)
        detector.feed(batch, max(o.last_s for o in batch))
    detector.end_all()
    return detector.events()
