"""The control-plane side of the agent put together: the session table,
the PFCP learner and its N4 watches, the SMF feeds, and their status."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sauron.bpf import libbpf
from sauron.catalog import Catalog
from sauron.control.handover import ControlState, still_sourced
from sauron.control.n4_watch import N4Watch
from sauron.control.pfcp_learner import PfcpLearner
from sauron.control.registry import SessionRegistry
from sauron.control.rules import LearnedRules
from sauron.control.settings import ControlPlaneConfig
from sauron.control.smf_feed import SmfFeed

log = logging.getLogger(__name__)


class ControlPlane:
    """`filter_program`: the N4 watch's socket filter, pinned by the build
    (sauron.bpf.companions.N4_FILTER); needed when PFCP is watched, and
    `filter_missing` says why there is none. `keep` hears the state to
    hand over (sauron.control.handover), every `keep_every_s` while it
    changed and once at stop, on the event loop."""

    def __init__(
        self,
        catalog: Catalog,
        dataplane: Any | None,
        config: ControlPlaneConfig,
        filter_program: Path | None = None,
        filter_missing: str = "the N4 watch's filter was not built",
        keep: Callable[[ControlState], None] | None = None,
        keep_every_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.keep, self.keep_every_s, self.clock = keep, keep_every_s, clock
        self._kept_version: int | None = None
        self.filter_program = filter_program
        self.filter_missing = filter_missing
        rules = LearnedRules(dataplane, catalog) if dataplane is not None else None
        self.registry = SessionRegistry(catalog, rules)
        self.learner = PfcpLearner(self.registry.upsert, self.registry.remove)
        self.watches: list[N4Watch] = []
        self.feeds = [
            SmfFeed(f.url, self.registry, f.interval_s, f.timeout_s, f.page_size)
            for f in config.open5gs_smf
        ]
        self._filter_fd: int | None = None
        #: the time no agent watched N4, when this one took over from another
        self.unwatched: dict[str, float] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def resume(self, state: ControlState, since: float | None, now: float) -> None:
        """Takes over from a previous agent: the sessions of the sources
        still configured back in the table (their rules kept in the data
        path) and in the PFCP learner (their later messages followed); and,
        when N4 is watched, the time since `since` (the last agent's last
        interval, the last moment it is known to have watched) said to be
        unwatched: PFCP sent then was not seen."""
        usable, dropped = still_sourced(
            state, bool(self.config.pfcp), {feed.shown for feed in self.feeds}
        )
        if dropped:
            log.info(
                "saved sessions of sources no longer configured left out",
                extra={"sessions": dropped},
            )
        self.learner.restore(usable.pfcp)
        self.registry.restore(usable.sessions)
        if not self.config.pfcp or since is None:
            return
        self.unwatched = {"since": since, "until": now, "seconds": round(now - since, 3)}
        log.warning(
            "PFCP not watched while no agent ran: a session established then is not known "
            + ("until an SMF feed lists it" if self.feeds else "(its traffic falls to the catalog)")
            + "; one released then stays in the table"
            + (" until the feed's next listing" if self.feeds else ""),
            extra={**self.unwatched, "sessions_restored": len(usable.sessions)},
        )

    def state(self) -> ControlState:
        """What the next agent takes over (on the event loop)."""
        return ControlState(
            list(self.registry.sessions.values()), self.learner.live(), self.clock()
        )

    def _keep_if_changed(self) -> None:
        if self.keep is None or self.registry.version == self._kept_version:
            return
        version = self.registry.version
        try:
            self.keep(self.state())
        except Exception:  # the disk: the agent measures on, and says so
            log.exception("cannot keep the session table for the next agent")
            return
        self._kept_version = version

    async def _keep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.keep_every_s)
            self._keep_if_changed()

    def learned_rules(self) -> dict[str, set[bytes]]:
        """The keys of the learned sessions' rules, by map name."""
        rules = self.registry.rules
        return rules.held() if rules is not None else {}

    def open(self) -> None:
        """Opens the N4 watches (before the event loop runs: a watch that
        cannot open is a configuration error, said at start)."""
        if self.config.pfcp and self._filter_fd is None:
            if self.filter_program is None:
                raise OSError(errno.ENOENT, self.filter_missing)
            self._filter_fd = libbpf.obj_get(str(self.filter_program))
        for watch in self.config.pfcp:
            assert self._filter_fd is not None
            self.watches.append(
                N4Watch(watch.name, watch.netns, self.learner, self._filter_fd, self.registry.flush)
            )

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        for watch in self.watches:
            watch.start(loop)
        self._tasks = [loop.create_task(feed.run()) for feed in self.feeds]
        if self.keep is not None:
            self._tasks.append(loop.create_task(self._keep_forever()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for watch in self.watches:
            watch.close()
        self.watches = []
        self._keep_if_changed()  # what the last moments changed

    def close(self) -> None:
        for watch in self.watches:
            watch.close()
        self.watches = []
        if self._filter_fd is not None:
            os.close(self._filter_fd)
            self._filter_fd = None

    def status(self) -> dict[str, Any]:
        rules = self.registry.rules
        return {
            "pfcp": {
                "watches": [w.stats() for w in self.watches],
                "messages": dict(sorted(self.learner.messages.items())),
                "applied": dict(sorted(self.learner.applied.items())),
                "rejects": dict(sorted(self.learner.rejects.items())),
                "unwatched": self.unwatched,
            },
            "smf_feeds": [f.status() for f in self.feeds],
            "rules": {
                **dict(sorted(rules.counts.items())),
                "kept_by_catalog": len(rules.kept_by_catalog),
            }
            if rules is not None
            else {},
            "events": dict(sorted(self.registry.events.items())),
        }
