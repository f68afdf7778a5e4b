"""The control-plane side of the agent put together: the session table,
the PFCP learner and its N4 watches, the SMF feeds, and their status."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from sauron.bpf.loader import SOCKET, BpfObject
from sauron.catalog import Catalog
from sauron.control.n4_watch import N4Watch
from sauron.control.pfcp_learner import PfcpLearner
from sauron.control.registry import SessionRegistry
from sauron.control.rules import LearnedRules
from sauron.control.settings import ControlPlaneConfig
from sauron.control.smf_feed import SmfFeed


class ControlPlane:
    def __init__(self, catalog: Catalog, dataplane: Any | None, config: ControlPlaneConfig) -> None:
        self.config = config
        rules = LearnedRules(dataplane, catalog) if dataplane is not None else None
        self.registry = SessionRegistry(catalog, rules)
        self.learner = PfcpLearner(self.registry.upsert, self.registry.remove)
        self.watches: list[N4Watch] = []
        self.feeds = [
            SmfFeed(f.url, self.registry, f.interval_s, f.timeout_s, f.page_size)
            for f in config.open5gs_smf
        ]
        self._filter: BpfObject | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def open(self) -> None:
        """Opens the N4 watches (before the event loop runs: a watch that
        cannot open is a configuration error, said at start)."""
        if self.config.pfcp and self._filter is None:
            self._filter = BpfObject(["pfcp_filter.c"])
        for watch in self.config.pfcp:
            assert self._filter is not None
            fd = self._filter.function("sauron_pfcp_filter", SOCKET).fd
            self.watches.append(
                N4Watch(watch.name, watch.netns, self.learner, fd, self.registry.flush)
            )

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        for watch in self.watches:
            watch.start(loop)
        self._tasks = [loop.create_task(feed.run()) for feed in self.feeds]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for watch in self.watches:
            watch.close()
        self.watches = []

    def close(self) -> None:
        for watch in self.watches:
            watch.close()
        self.watches = []
        if self._filter is not None:
            self._filter.close()
            self._filter = None

    def status(self) -> dict[str, Any]:
        rules = self.registry.rules
        return {
            "pfcp": {
                "watches": [w.stats() for w in self.watches],
                "messages": dict(sorted(self.learner.messages.items())),
                "applied": dict(sorted(self.learner.applied.items())),
                "rejects": dict(sorted(self.learner.rejects.items())),
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
