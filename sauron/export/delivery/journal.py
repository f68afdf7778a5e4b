"""The queue's journal: the points offered and not yet written or spooled,
on disk beside the spool, so that an agent killed between two flushes
(SIGKILL, OOM) loses none of them.

Each offer appends its points (one write, no fsync: a killed process
leaves its writes in the page cache; a power cut may lose the last flush
interval's points). After each flush round, and after the queue spilled
into the spool, the journal is replaced (written aside, then renamed over
it) with what is still queued: written batches are the server's, failed
or spilled ones are in the spool. The next start moves what the journal holds into the spool,
where it is replayed like any other batch. A point may so be written twice
(its batch written, the agent killed before the rewrite): it carries its
snapshot's timestamp, and the server keeps one point per series and time.
The spool's lock keeps a second agent off the journal too."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

NAME = "queued.journal"


class Journal:
    def __init__(self, directory: Path) -> None:
        self.path = directory / NAME
        #: why the journal cannot be written ("" while it can): the points
        #: then wait in memory only
        self.broken = ""

    def recover(self) -> list[str]:
        """What the last agent queued and never wrote or spooled; the
        journal is emptied (the caller spools them)."""
        try:
            text = self.path.read_bytes().decode()
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as exc:
            log.error("queue journal unreadable", extra={"path": str(self.path), "error": str(exc)})
            return []
        # "\n" alone ends a line: a value may hold any other line break
        # the last piece is "" or a write cut short, whose point was never whole
        return text.split("\n")[:-1]

    def append(self, lines: list[str]) -> None:
        self._write(lines, self.path, os.O_APPEND)

    def rewrite(self, lines: list[str]) -> None:
        """The journal holds exactly `lines` (what is still queued), at once:
        a kill half way leaves the former journal whole."""
        aside = self.path.with_name(self.path.name + ".new")
        if self._write(lines, aside, os.O_TRUNC):
            try:
                os.replace(aside, self.path)
            except OSError as exc:
                self._failed(exc)

    def _write(self, lines: list[str], path: Path, mode: int) -> bool:
        data = memoryview("".join(f"{line}\n" for line in lines).encode())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | mode, 0o600)
            try:
                while data:  # a short write goes on where it stopped
                    data = data[os.write(fd, data) :]
            finally:
                os.close(fd)
        except OSError as exc:
            self._failed(exc)
            return False
        self.broken = ""
        return True

    def _failed(self, exc: OSError) -> None:
        if not self.broken:
            log.error(
                "cannot journal the queue: points wait in memory only",
                extra={"path": str(self.path), "error": exc.strerror},
            )
        self.broken = exc.strerror or str(exc)

    def remove(self) -> None:
        for path in (self.path, self.path.with_name(self.path.name + ".new")):
            path.unlink(missing_ok=True)
