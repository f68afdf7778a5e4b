"""One piece of the agent's state kept for the next agent, as a file in its
state folder (owner-only): pickled with a format tag, written aside then
renamed over the last, so it is whole or absent whatever kills the agent;
read back only when whole and of the expected format and type. Only the
agent writes and reads it."""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class StateFile:
    def __init__(self, path: Path, kind: str) -> None:
        self.path = path
        #: the format tag; a change of what it holds changes it
        self.kind = kind

    def save(self, value: object) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        aside = self.path.with_name(self.path.name + ".new")
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            pickle.dump((self.kind, value), out, protocol=5)
        os.replace(aside, self.path)

    def load(self, expected: type[T]) -> T | None:
        """What was saved; None (and why, logged) when nothing usable is."""
        try:
            with self.path.open("rb") as saved:
                kind, value = pickle.load(saved)
        except FileNotFoundError:
            return None
        except Exception as exc:  # a torn or foreign file: start afresh
            log.warning("saved state unreadable", extra={"path": str(self.path), "error": str(exc)})
            return None
        if kind != self.kind or not isinstance(value, expected):
            log.warning("saved state of another format", extra={"path": str(self.path)})
            return None
        return value

    def remove(self) -> None:
        for path in (self.path, self.path.with_name(self.path.name + ".new")):
            path.unlink(missing_ok=True)
