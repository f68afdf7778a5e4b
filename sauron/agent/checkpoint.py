"""The agent's last reading of the data path, kept across its restarts.

A data path outlives the agent that built it (sauron.agent.datapath): its
counters go on while no agent runs. So that the first interval after a
restart covers the whole time the agent was away, no more and no less,
every interval's reading is saved (written whole, then renamed over the
last), with the time it was taken and the identity of the build it was
read from; the next agent that adopts the same build starts its engine
from it. A reading of another build, or one that cannot be read, is
ignored, and the engine starts from its first reading (logged).

The file is the agent's own (sauron.agent.state_file).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from sauron.agent.state_file import StateFile
from sauron.bpf.maps import DataPlaneCounters

log = logging.getLogger(__name__)

#: what the file starts with; a change of the reading's shape changes it
FORMAT = "sauron-checkpoint-2"


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
        self.file = StateFile(path, FORMAT)
        self.build = build
        self.saved_at = 0.0

    def save(self, counters: DataPlaneCounters, at: float) -> None:
        """Keeps `counters` (read at `at`), in place of the last."""
        self.file.save(Reading(counters, at, self.build))
        self.saved_at = at

    def load(self) -> Reading | None:
        """The saved reading of this build; None (and why, logged) when
        there is none to start from."""
        reading = self.file.load(Reading)
        if reading is None:
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
        self.file.remove()
