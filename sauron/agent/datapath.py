"""The agent's data path over the agent's own lifetime: built once in a
process of its own, pinned, adopted by the next agent, left counting or
removed as the operator means it.

A start finds the pin folder of its node and configuration
(sauron.bpf.pinned.pin_folder) and:
- adopts a build of the same identity (same sources, flags and CPUs: the
  same programs over the same maps): no compile, its links kept, counters
  going on; the first interval starts where the last agent's last reading
  left off (sauron.agent.checkpoint), so it covers the whole time no agent
  ran;
- otherwise builds one (sauron.bpf.build, a child process: LLVM never
  enters the agent) and moves every link to it at once (bpf_link update:
  no frame meets an interface without a program). A build replacing one of
  the same map geometry counts in that build's maps (lib/kept.h), so an
  upgrade loses no frame and its first interval starts from the last
  reading like an adoption's; a geometry change starts from zero, and the
  start says so (the log, /readyz).
Stopping detaches every link and removes the pins, or with keep leaves
them counting for the next start. A crash leaves them counting (fail-open).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import shlex
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sauron.agent.checkpoint import Checkpoint, Reading
from sauron.agent.config import InterfaceConfig
from sauron.agent.interfaces import LINK_HOOKS, attach_interfaces
from sauron.agent.saved_sessions import SessionFile
from sauron.bpf import libbpf
from sauron.bpf.build import BuildFailed, build_in_subprocess, remove_tree
from sauron.bpf.companions import COMPANIONS
from sauron.bpf.link_calls import TCX_EGRESS
from sauron.bpf.links import Links
from sauron.bpf.pinned import (
    BUILD_PREFIX,
    PinnedDataPlane,
    build_flags,
    build_identity,
    builds_in,
)
from sauron.host.namespace_ref import namespace_identity

log = logging.getLogger(__name__)

#: extra compiler flags for the data path (a test builds a changed program
#: with it to try an upgrade; an operator has no need of it)
CFLAGS_VARIABLE = "SAURON_DATAPATH_CFLAGS"
#: the folder of the links, in an agent's pin folder
LINKS = "links"

ADOPTED, BUILT, REPLACED = "adopted", "built", "replaced"


@dataclass
class DataPathStart:
    """How this agent came by its data path, as /readyz and the log say."""

    #: adopted (a running data path taken over), built (none was there) or
    #: replaced (an older build was there: its programs replaced)
    how: str
    build: str
    folder: str
    #: seconds from the start until the data path was open
    seconds: float
    #: builds found and replaced
    replaced: list[str] = field(default_factory=list)
    #: how long before this start the last agent's last interval ended: the
    #: first interval starts there (None: no reading of the last agent)
    resumed_after_s: float | None = None
    note: str = ""

    def detail(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if v not in (None, "", [])}


def extra_cflags(environ: dict[str, str] | os._Environ[str] = os.environ) -> tuple[str, ...]:
    return tuple(shlex.split(environ.get(CFLAGS_VARIABLE, "")))


class DataPathBusy(RuntimeError):
    """Another agent holds this data path."""


def claim_lock(state_dir: Path) -> int:
    """Takes the lock of a data path's state folder for as long as the
    returned descriptor stays open (the process ending in any way lets it
    go); DataPathBusy names the holder."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(state_dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
            raise DataPathBusy(
                f"an agent (pid {holder or 'unknown'}) runs this data path ({state_dir})"
            ) from None
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def lock_holder(state_dir: Path) -> int | None:
    """The pid of the agent holding a data path's lock; None when none does."""
    try:
        fd = os.open(state_dir / "lock", os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        return int(text) if text.isdigit() else 0
    finally:
        os.close(fd)
    return None


class AgentDataPath:
    """One agent's data path: `open()` adopts or builds it, `attach()`
    puts it on the configured interfaces (keeping the links it adopted),
    `stop(keep)` leaves it counting or removes it."""

    def __init__(
        self,
        folder: Path,
        state_dir: Path,
        cflags: tuple[str, ...] = (),
        companions: tuple[str, ...] = (),
    ) -> None:
        self.folder = folder
        #: the companions wanted (sauron.bpf.companions): built (or adopted)
        #: with the data path
        self.companions = companions
        #: each wanted companion's pinned folder, once open() found or built it
        self.companion_builds: dict[str, Path] = {}
        #: why a wanted companion is missing
        self.companion_failed: dict[str, str] = {}
        self.flags = build_flags(extra=cflags)
        self.cflags = cflags
        self.identity = build_identity(self.flags)
        self.links = Links(pin_dir=folder / LINKS)
        self.state_dir = state_dir / folder.name
        self.dataplane: PinnedDataPlane | None = None
        self.start: DataPathStart | None = None
        self.checkpoint: Checkpoint | None = None
        #: the sessions this agent knew, for the next one
        self.sessions = SessionFile(self.state_dir / "sessions")
        self._lock: int | None = None
        #: a data path was pinned when this agent started (a failed start
        #: leaves it counting)
        self.found_existing = False

    def open(self) -> PinnedDataPlane:
        """Adopts or builds the data path, after taking its lock (one agent
        per data path: a second start with the same configuration fails
        naming the first)."""
        started = time.monotonic()
        self._lock = claim_lock(self.state_dir)
        self.found_existing = bool(builds_in(self.folder))
        for stale in self.folder.glob("staging-*") if self.folder.is_dir() else []:
            remove_tree(stale)  # a build that died half way
        present = builds_in(self.folder)
        note = ""
        wanted = {name: self.folder / COMPANIONS[name].folder_name() for name in self.companions}
        missing = tuple(name for name, where in wanted.items() if not where.is_dir())
        how = ADOPTED
        if self.identity not in present or missing:
            adopting = self.identity in present
            running = (
                self.folder / f"{BUILD_PREFIX}{present[-1]}" if present and not adopting else None
            )
            try:
                built = build_in_subprocess(
                    self.folder, extra=self.cflags, keep_from=running, companions=missing
                )
            except BuildFailed as exc:
                if not adopting:
                    raise
                # the data path is there to adopt: only the companions are missing
                self.companion_failed = {name: str(exc) for name in missing}
            else:
                self.companion_failed = built.failed
                if not adopting:
                    how = REPLACED if present else BUILT
                if running is not None and not built.kept_maps:
                    note = f"replaced build {', '.join(present)}: {built.why_not}"
        self.companion_builds = {name: where for name, where in wanted.items() if where.is_dir()}
        dp = PinnedDataPlane(self.folder / f"{BUILD_PREFIX}{self.identity}")
        self.dataplane = dp
        # a reading belongs to the maps it was read from (kept across an
        # upgrade of the same geometry): their kernel id, unique until reboot
        maps_id = libbpf.map_info(dp.map_fd("slice_stats")).map_id
        self.checkpoint = Checkpoint(self.state_dir / "checkpoint", f"maps-{maps_id}")
        self.start = DataPathStart(
            how=how,
            build=self.identity,
            folder=str(self.folder),
            seconds=round(time.monotonic() - started, 3),
            replaced=[b for b in present if b != self.identity],
            note=note,
        )
        if note:
            log.warning("data path replaced", extra={"note": note})
        return dp

    def baseline(self) -> Reading | None:
        """The last agent's last reading of these maps, if it left one."""
        if self.checkpoint is None or self.start is None or self.start.how == BUILT:
            return None
        reading = self.checkpoint.load()
        if reading is not None:
            gap = round(max(0.0, time.time() - reading.at), 3)
            self.start.resumed_after_s = gap
            log.info("resuming counting", extra={"since": reading.at, "seconds_before_start": gap})
        elif not self.start.note:
            self.start.note = (
                "no reading of the last agent: the first interval starts now; "
                "frames counted since its last interval are in the totals only"
            )
        return reading

    def attach(self, interfaces: list[InterfaceConfig]) -> dict[str, str]:
        """Every configured interface on its hook: a link adopted on the
        right hook is kept (its program replaced at once if it runs another
        build's), missing ones are made, and adopted links nothing asks for
        any more are detached. Returns the ingress hook by interface."""
        assert self.dataplane is not None, "open() first"
        self.links.adopt()
        hooks = attach_interfaces(self.dataplane, interfaces, self.links)
        wanted = {
            (namespace_identity(itf.netns)[1], itf.name, hook)
            for itf in interfaces
            for hook in self._link_hooks(itf, hooks[itf.name])
        }
        for link in list(self.links.links):
            if (link.netns, link.ifname, link.hook) not in wanted:
                log.info("detaching a link no interface asks for", extra={"pin": str(link.pin)})
                self.links.detach(link)
        for replaced in self.start.replaced if self.start else []:
            remove_tree(self.folder / f"{BUILD_PREFIX}{replaced}")
        kept = set(self.companion_builds.values())
        for companion in COMPANIONS.values():
            for pinned in self.folder.glob(f"{companion.prefix}*"):
                if pinned not in kept:  # of other sources, or no longer asked for
                    remove_tree(pinned)
        return hooks

    def attached(self) -> list[tuple[str, str, bool]]:
        """(interface, hook, still attached) of each link the agent holds,
        for the exposition: a 0 says the kernel let go of a program (its
        interface was deleted or made anew) and the agent needs a restart."""
        return [
            (link.ifname, link.hook, on) for link, on in self.links.attachments() if on is not None
        ]

    @staticmethod
    def _link_hooks(itf: InterfaceConfig, ingress: str) -> list[str]:
        hooks = [LINK_HOOKS[ingress]]
        if itf.tc_egress:
            hooks.append(TCX_EGRESS)
        return hooks

    def stop(self, keep: bool) -> None:
        """keep: the links and pins stay (the data path counts on, for the
        next start); otherwise every link is detached and the pin folder,
        the saved reading and the saved sessions removed. An agent that
        never took the data path's lock (another agent runs it) touches
        nothing."""
        if self._lock is None:
            return
        if keep:
            self.links.keep()
        else:
            self.links.detach_all()
        if self.dataplane is not None:
            self.dataplane.close()
            self.dataplane = None
        if keep:
            log.info("data path left counting", extra={"folder": str(self.folder)})
        else:
            remove_tree(self.folder)
            if self.checkpoint is not None:
                self.checkpoint.remove()
            remove_tree(self.state_dir)
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
