"""The agent's session table: every PDU session learned from any source,
its slice, and the data-path rules kept in step with it."""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Any

from sauron.catalog import Catalog
from sauron.control.record import ControlSession
from sauron.control.rules import LearnedRules
from sauron.control.slicing import resolve

log = logging.getLogger(__name__)

#: sessions kept after they ended, for `state=ended` queries and replays
ENDED_KEPT = 1000


def _content(session: ControlSession) -> dict[str, Any]:
    """What the source said of the session, without times and the slice
    (decided here)."""
    doc = session.doc(None)
    for derived in ("first_seen", "last_seen", "slice", "slice_rule"):
        del doc[derived]
    return doc


class SessionRegistry:
    def __init__(
        self,
        catalog: Catalog,
        rules: LearnedRules | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.catalog = catalog
        self.rules = rules
        self.clock = clock
        self.sessions: dict[tuple[Any, ...], ControlSession] = {}
        #: (session, when it ended), newest last
        self.ended: deque[tuple[ControlSession, float]] = deque(maxlen=ENDED_KEPT)
        self.events: Counter[str] = Counter()
        #: grows with every change of the table (what to save, and when)
        self.version = 0

    @staticmethod
    def _key(session: ControlSession) -> tuple[Any, ...]:
        return (session.source, *session.key)

    def upsert(self, session: ControlSession) -> None:
        key = self._key(session)
        self.events["learned" if key not in self.sessions else "changed"] += 1
        self._put(key, session)

    def restore(self, sessions: list[ControlSession]) -> None:
        """Takes the sessions a previous agent knew back into the table, each
        with its slice decided anew by this catalog and its rules written
        (those already in the data path are written again, unchanged)."""
        for session in sessions:
            try:
                self._put(self._key(session), session)
            except Exception:  # a row this code cannot take: left out, said
                log.exception(
                    "a saved session could not be restored", extra={"key": str(session.key)}
                )
                self.events["restore_failed"] += 1
                continue
            self.events["restored"] += 1

    def _put(self, key: tuple[Any, ...], session: ControlSession) -> None:
        """The session in the table, its slice decided, its rules written."""
        found, rule = resolve(self.catalog, session)
        session.slice_id = found.id if found else None
        session.slice_rule = rule
        self.version += 1
        self.sessions[key] = session
        if self.rules is not None:
            self.rules.apply(key, session)

    def remove(self, session: ControlSession) -> None:
        key = self._key(session)
        if self.sessions.pop(key, None) is not None:
            self.version += 1
            self.events["removed"] += 1
            self.ended.append((session, self.clock()))
        if self.rules is not None:
            self.rules.apply(key, None)

    def replace_source(
        self, source: str, sessions: Iterable[ControlSession], scope: tuple[Any, ...] = ()
    ) -> None:
        """A source that reports all its sessions at once (an SMF's session
        list): those of the source whose key starts with `scope` (that SMF)
        and that it no longer lists are gone."""
        fresh = {self._key(s): s for s in sessions}
        for key, gone in list(self.sessions.items()):
            if gone.source == source and gone.key[: len(scope)] == scope and key not in fresh:
                self.remove(gone)
        for key, session in fresh.items():
            old = self.sessions.get(key)
            if old is not None:
                session.first_seen = old.first_seen
                if _content(old) == _content(session):
                    old.last_seen = session.last_seen
                    continue
            self.upsert(session)

    def flush(self) -> bool:
        """Makes the data path see rule changes; True when there were."""
        return self.rules.flush() if self.rules is not None else False

    def slice_name(self, session: ControlSession) -> str | None:
        return None if session.slice_id is None else self.catalog.name_of(session.slice_id)

    def docs(self, ended: bool = False) -> list[dict[str, Any]]:
        """The active sessions, oldest first; with `ended`, then those that
        ended (most recent ENDED_KEPT), each with when it ended."""
        ordered = sorted(self.sessions.values(), key=lambda s: (s.first_seen, str(s.key)))
        docs = [{**s.doc(self.slice_name(s)), "ended": None} for s in ordered]
        if ended:
            docs += [{**s.doc(self.slice_name(s)), "ended": at} for s, at in self.ended]
        return docs

    def by_teid(self) -> dict[int, ControlSession]:
        """Each TEID of a learned session (either end) to its session."""
        return {t.teid: s for s in self.sessions.values() for t in s.tunnels}

    def by_ue(self) -> dict[str, ControlSession]:
        return {a.split("/")[0]: s for s in self.sessions.values() for a in s.ue_addresses}
