"""Evidence of a degraded slice: while a slice is diagnosed the data path
copies the first bytes of each of its GTP-U frames (sauron.bpf.evidence);
they are kept here in a bounded ring per slice and written as one pcapng
per violation: created with the ring's frames when the violation is first
recorded, then grown with each interval's frames while it stays open, up
to a size cap. The folder is bounded too: the oldest files go first.

Only the frames' heads are kept (SNAPLEN bytes: Ethernet, outer IP, UDP,
GTP-U with its extensions, the inner IP and L4 headers), each with its
length on the wire, so a replay counts what the programs counted."""

from __future__ import annotations

import logging
import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sauron.abi import layout
from sauron.bpf.evidence import EvidenceFrame
from sauron.diagnosis import pcapng

log = logging.getLogger(__name__)

APPLICATION = "sauron"
SUFFIX = ".pcapng"
#: the interfaces of every file, in the attach points' order: a frame's
#: interface index is its point's id
INTERFACES = [layout.POINT_NAMES[p] for p in range(layout.POINTS)]


class EvidenceSource(Protocol):
    """What the keeper needs of sauron.bpf.evidence.EvidenceTap."""

    def capture(self, slice_ids: Iterable[int]) -> None: ...
    def frames(self) -> list[EvidenceFrame]: ...
    def missed(self) -> int: ...
    def close(self) -> None: ...


@dataclass
class EvidenceFile:
    """One violation's pcapng as written so far."""

    path: Path
    slice_name: str
    target: str
    started_at: float
    frames: int = 0
    bytes: int = 0
    #: the newest frame written, by the order the keeper collected them in
    #: (a frame's time cannot tell: the monotonic clock's distance to the
    #: unix one is read anew at each collection, and CPUs stamp out of order)
    last_seq: int = -1
    #: the size cap was reached: later frames are not written
    capped: bool = False


#: the names file_name gives (slice names are the catalog's: [a-z][a-z0-9_-]*)
NAMED = re.compile(r"^[a-z][a-z0-9_-]*_[a-z0-9_-]+_\d{8}T\d{6}Z\.pcapng$")


def file_name(slice_name: str, target: str, started_at: float) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started_at))
    return f"{slice_name}_{target.replace('.', '-')}_{stamp}{SUFFIX}"


def direction_of(target: str) -> int | None:
    """The direction a target is checked in (None: both)."""
    last = target.rsplit(".", 1)[-1]
    return {"uplink": layout.DIR_UPLINK, "downlink": layout.DIR_DOWNLINK}.get(last)


def _comment(frame: EvidenceFrame, slice_name: str) -> str:
    direction = "downlink" if frame.direction == layout.DIR_DOWNLINK else "uplink"
    return f"slice {slice_name} {direction} teid 0x{frame.teid:08x}"


class EvidenceKeeper:
    """watch(slice names) sets the slices captured (the others' rings are
    emptied); collect() moves what the data path copied into the rings;
    record(...) writes or grows a violation's pcapng and returns its path."""

    def __init__(
        self,
        source: EvidenceSource,
        slice_ids: Callable[[], Mapping[str, int]],
        directory: Path,
        ring_frames: int = 10_000,
        max_file_bytes: int = 16 << 20,
        max_total_bytes: int = 256 << 20,
    ) -> None:
        self.source, self.directory = source, directory
        #: the catalog's slice ids by name, as they are now (a reload may move them)
        self.slice_ids = slice_ids
        self.ring_frames = ring_frames
        self.max_file_bytes, self.max_total_bytes = max_file_bytes, max_total_bytes
        #: per slice: (sequence number, frame), the oldest first
        self._rings: dict[str, deque[tuple[int, EvidenceFrame]]] = {}
        self._collected = 0
        self._files: dict[str, EvidenceFile] = {}
        #: frames the data path's ring had no room for, since the start
        self.missed = 0

    def watch(self, slice_names: Iterable[str]) -> None:
        ids = self.slice_ids()
        names = {n for n in slice_names if n in ids}
        for gone in set(self._rings) - names:
            del self._rings[gone]
        for name in names:
            self._rings.setdefault(name, deque(maxlen=self.ring_frames))
        self.source.capture(ids[n] for n in names)

    def collect(self) -> None:
        names = {i: name for name, i in self.slice_ids().items()}
        for frame in self.source.frames():
            ring = self._rings.get(names.get(frame.slice_id, ""))
            if ring is not None:
                ring.append((self._collected, frame))
                self._collected += 1
        self.missed = self.source.missed()

    def record(self, slice_name: str, target: str, started_at: float) -> EvidenceFile | None:
        """The violation's file, written or grown by the frames of the
        slice's ring it does not hold yet, in the target's direction when
        it has one; None when the slice is not watched or nothing was ever
        captured for it."""
        ring = self._rings.get(slice_name)
        name = file_name(slice_name, target, started_at)
        found = self._files.get(name)
        if ring is None or (found is None and not ring):
            return found
        if found is None:
            found = EvidenceFile(self.directory / name, slice_name, target, started_at)
            self._files[name] = found
            ensure_private(self.directory)
            head = pcapng.section_header(
                APPLICATION,
                f"Sauron evidence: slice {slice_name}, {target} violated since "
                + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started_at)),
            )
            head += b"".join(pcapng.interface(n, layout.EVIDENCE_SNAPLEN) for n in INTERFACES)
            self._write(found, head, truncate=True)
        if found.capped:
            return found
        blocks: list[bytes] = []
        room = self.max_file_bytes - found.bytes
        direction = direction_of(target)
        # the ring is in collection order: only its tail is new to the file
        fresh: list[tuple[int, EvidenceFrame]] = []
        for seq, frame in reversed(ring):
            if seq <= found.last_seq:
                break
            fresh.append((seq, frame))
        for seq, frame in reversed(fresh):
            if direction is not None and frame.direction != direction:
                found.last_seq = seq
                continue
            block = pcapng.packet(
                pcapng.Packet(
                    frame.point,
                    frame.time_ns,
                    frame.data,
                    frame.frame_len,
                    _comment(frame, slice_name),
                )
            )
            if len(block) > room:
                found.capped = True
                break
            room -= len(block)
            blocks.append(block)
            found.frames += 1
            found.last_seq = seq
        if blocks:
            self._write(found, b"".join(blocks))
            self._prune(keep=found.path)
        return found

    def _write(self, file: EvidenceFile, raw: bytes, truncate: bool = False) -> None:
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if truncate else os.O_APPEND)
        fd = os.open(file.path, flags, 0o600)
        try:
            os.write(fd, raw)
        finally:
            os.close(fd)
        file.bytes += len(raw)

    def _prune(self, keep: Path) -> None:
        """Removes the oldest evidence files (this agent's or an earlier
        one's, by their names; nothing else in the folder) until the folder
        is within its cap."""
        sized: list[tuple[float, int, Path]] = []
        for path in self.directory.glob(f"*{SUFFIX}"):
            if not NAMED.match(path.name):
                continue
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            sized.append((st.st_mtime, st.st_size, path))
        total = sum(size for _, size, _ in sized)
        for _, size, path in sorted(sized):
            if total <= self.max_total_bytes:
                break
            if path == keep:
                continue
            total -= size
            path.unlink(missing_ok=True)
            self._files.pop(path.name, None)
            log.info("evidence removed: the folder is full", extra={"file": str(path)})

    def files(self, slice_name: str) -> list[EvidenceFile]:
        """The slice's violations' files still on disk, newest first."""
        found = [f for f in self._files.values() if f.slice_name == slice_name]
        return sorted(
            (f for f in found if f.path.exists()), key=lambda f: f.started_at, reverse=True
        )

    def close(self) -> None:
        """Stops the capture (the data path may outlive the agent)."""
        self.source.close()


def ensure_private(directory: Path) -> None:
    """The folder, readable by its owner only: the frames' heads carry
    subscribers' addresses."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
