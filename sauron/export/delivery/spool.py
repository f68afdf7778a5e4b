"""The on-disk spool: batches of lines (an InfluxDB point or a remote-write
sample each) the server could not take, kept in order until it can.

One file per batch, named by a sequence number, written to a temporary
name, fsync'd, then renamed (and the directory fsync'd), so a batch is
either whole on disk or absent whatever kills the agent. Replay takes the
oldest first. The spool has a size cap: making room drops the oldest
batches, and every point dropped is counted. A lock file keeps a second
agent off the same directory."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SUFFIX = ".lp"
_TEMPORARY = ".partial"
_LOCK = "spool.lock"


class SpoolError(RuntimeError):
    """The spool directory cannot be used (not writable, held by another agent)."""


@dataclass(frozen=True)
class Batch:
    seq: int
    lines: list[str]


class Spool:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._lock_fd = os.open(directory / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SpoolError(f"spool directory {directory}: {exc.strerror}") from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise SpoolError(f"spool directory {directory} is in use by another agent") from None
        for leftover in directory.glob(f"*{_TEMPORARY}"):
            leftover.unlink()  # a write cut short: its batch was never acknowledged as spooled
        #: seq -> (bytes, points), oldest first
        self._index: dict[int, tuple[int, int]] = {}
        for path in sorted(directory.glob(f"*{SUFFIX}")):
            try:
                seq = int(path.stem)
                data = path.read_bytes()
            except (ValueError, OSError):
                log.warning("spool file skipped", extra={"file": str(path)})
                continue
            self._index[seq] = (len(data), data.count(b"\n"))
        self._next = max(self._index, default=0) + 1
        self._bytes = sum(size for size, _ in self._index.values())
        self._points = sum(points for _, points in self._index.values())
        #: points thrown away to respect the cap, since this spool was opened
        self.dropped = 0

    def close(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    @property
    def batches(self) -> int:
        return len(self._index)

    @property
    def points(self) -> int:
        return self._points

    @property
    def size(self) -> int:
        return self._bytes

    def _path(self, seq: int) -> Path:
        return self.directory / f"{seq:016d}{SUFFIX}"

    def append(self, lines: list[str]) -> int:
        """Stores one batch durably; returns the points dropped to make room
        (oldest batches first; the new batch itself when it alone is over
        the cap)."""
        data = "".join(f"{text}\n" for text in lines).encode()
        if len(data) > self.max_bytes:
            self._drop(len(lines), "a batch larger than the whole spool")
            return len(lines)
        dropped = 0
        while self._index and self.size + len(data) > self.max_bytes:
            oldest = next(iter(self._index))
            dropped += self._index[oldest][1]
            self.remove(oldest)
        if dropped:
            self._drop(dropped, "spool full, oldest points dropped")
        seq = self._next
        self._next += 1
        final = self._path(seq)
        partial = final.with_name(final.name + _TEMPORARY)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        partial.rename(final)
        self._sync_directory()
        self._index[seq] = (len(data), len(lines))
        self._bytes += len(data)
        self._points += len(lines)
        return dropped

    def _drop(self, points: int, why: str) -> None:
        self.dropped += points
        log.error(
            "points dropped",
            extra={"points": points, "reason": why, "spool": str(self.directory)},
        )

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def oldest(self) -> Batch | None:
        while self._index:
            seq = next(iter(self._index))
            try:
                text = self._path(seq).read_bytes().decode()
            except OSError as exc:
                points = self._index[seq][1]
                self.remove(seq)
                self._drop(points, f"spool file unreadable: {exc.strerror}")
                continue
            # "\n" alone ends a line: a value may hold any other line break
            return Batch(seq, text.split("\n")[:-1])
        return None

    def remove(self, seq: int) -> None:
        size, points = self._index.pop(seq, (0, 0))
        self._bytes -= size
        self._points -= points
        with contextlib.suppress(FileNotFoundError):
            self._path(seq).unlink()
