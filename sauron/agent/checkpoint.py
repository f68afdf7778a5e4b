"""The agent's last reading of the data path, kept across its restarts.

A data path outlives the agent that built it (sauron.agent.datapath): its
counters go on while no agent runs. So that the first interval after a
restart covers the whole time the agent was away, no more and no less,
every interval's reading is saved (written whole, then renamed over the
last), with the time it was taken and the identity of the build it was
read from; the next agent that adopts the same build starts its engine
from it. A reading of another build, or one that cannot be read, is
ignored, and the engine starts from its first reading (logged).

The file holds the agent's own reading in Python's pickle format, in a
folder only its owner may enter; it is never read from elsewhere.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from dataclasses import dataclass
from pathlib import Path

from sauron.bpf.maps import DataPlaneCounters

log = logging.getLogger(__name__)

#: what the file starts with; a change of the reading's shape changes it
FORMAT = "sauron-checkpoint-1"


@dataclass(frozen=True)
class Reading:
    """A reading of the data path's counters, when, and from which build."""

    counters: DataPlaneCounters
    at: float
    build: str


class Checkpoint:
    """The saved reading of one agent (one pin folder)."""

    def __init__(self, path: Path, build: str) -> None:
        self.path = path
        self.build = build
        self.saved_at = 0.0

    def save(self, counters: DataPlaneCounters, at: float) -> None:
        """Keeps `counters` (read at `at`), in place of the last."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        staging = self.path.with_name(self.path.name + ".new")
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            pickle.dump((FORMAT, Reading(counters, at, self.build)), out, protocol=5)
        os.replace(staging, self.path)
        self.saved_at = at

    def load(self) -> Reading | None:
        """The saved reading of this build; None (and why, logged) when
        there is none to start from."""
        try:
            with self.path.open("rb") as saved:
                kind, reading = pickle.load(saved)
        except FileNotFoundError:
            return None
        except Exception as exc:  # a torn or foreign file: start afresh
            log.warning("checkpoint unreadable", extra={"path": str(self.path), "error": str(exc)})
            return None
        if kind != FORMAT or not isinstance(reading, Reading):
            log.warning("checkpoint of another format", extra={"path": str(self.path)})
            return None
        if reading.build != self.build:
            log.info(
                "checkpoint of another build",
                extra={"saved": reading.build, "running": self.build},
            )
            return None
        if reading.at > time.time():
            log.warning("checkpoint from the future: ignored", extra={"at": reading.at})
            return None
        return reading

    def remove(self) -> None:
        for path in (self.path, self.path.with_name(self.path.name + ".new")):
            path.unlink(missing_ok=True)
