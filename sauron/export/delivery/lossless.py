"""Lossless delivery, the part every pushing exporter shares: each snapshot
becomes lines (in the engine's thread), which wait in a bounded queue and
are written in batches every flush interval by the exporter's writer.

While the server answers, batches go straight to it. When a write fails
for a reason that may pass (no connection, timeout, 5xx, 429), that batch
and every later one go to the disk spool instead, in order, and the spool
is replayed oldest first once the backoff (doubling, with jitter, or the
server's Retry-After) allows another attempt; a spool left by an earlier
run is replayed the same way. A refusal of who we are (401, 403, 404) is
logged once, clearly, and retried only every `rejected_retry_s` while the
lines wait in the spool; a refusal of what a batch holds (other 4xx) drops
that batch, counted (413: the batch is split first). Lines keep their
snapshot's timestamp, so a replay overwrites rather than adds. The queue
is journaled beside the spool (sauron.export.delivery.journal): an agent
killed between two flushes loses no line; the next start spools them.

An exporter is a LosslessExporter with a name, `lines_of` (a snapshot as
lines, each one point or sample with its timestamp) and a writer (a batch
of lines as one request, sauron.export.delivery.outcome.Writer)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from sauron.export.delivery.journal import Journal
from sauron.export.delivery.outcome import Outcome, Writer, WriteResult
from sauron.export.delivery.settings import DeliveryConfig
from sauron.export.delivery.spool import Spool
from sauron.export.exporter import ExporterHealth

if TYPE_CHECKING:
    from sauron.kpi.engine import KpiEngine
    from sauron.kpi.records import Snapshot

log = logging.getLogger(__name__)

#: states, as /readyz and the metrics show them
STARTING, PUBLISHING, SPOOLING, REJECTED, STOPPED = (
    "starting",
    "publishing",
    "spooling",
    "rejected",
    "stopped",
)
STATES = (STARTING, PUBLISHING, SPOOLING, REJECTED, STOPPED)


def retry_delay(
    failures: int,
    first_s: float,
    max_s: float,
    retry_after: float | None = None,
    draw: Callable[[], float] = random.random,
) -> float:
    """Seconds before the next attempt after `failures` failures in a row:
    first_s doubling up to max_s, the upper half of it drawn at random so
    that many agents do not return at once; never sooner than Retry-After."""
    ceiling = min(max_s, first_s * 2.0 ** max(0, failures - 1))
    delay: float = ceiling / 2 + draw() * ceiling / 2
    return max(delay, retry_after or 0.0)


@dataclass
class DeliveryStats:
    state: str = STARTING
    #: every point (line) handed to the exporter since it started
    points_offered: int = 0
    points_written: int = 0
    #: write attempts that failed and will be tried again
    retries: int = 0
    points_spooled: int = 0
    points_replayed: int = 0
    #: reason -> points thrown away (spool cap, refused content)
    points_dropped: dict[str, int] = field(default_factory=dict)
    last_success: float | None = None  # unix seconds
    last_error: str = ""

    def dropped(self, reason: str, points: int) -> None:
        self.points_dropped[reason] = self.points_dropped.get(reason, 0) + points


Config = TypeVar("Config", bound=DeliveryConfig)


class LosslessExporter(Generic[Config]):
    """An exporter (sauron.export.exporter): started with the engine whose
    snapshots it exports, it hears each one in the engine's thread. A
    subclass names itself and says how a snapshot becomes lines
    (`lines_of`) and who is refused (`refusal`)."""

    #: in /readyz, the logs and the listener failures
    name = "lossless"
    #: why /readyz is not ready while the server refuses who we are
    refused_problem = "the server refuses the writes"

    def __init__(
        self,
        config: Config,
        make_writer: Callable[[], Writer],
        clock: Callable[[], float] = time.time,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.clock, self.draw = clock, draw
        self.spool = Spool(config.spool_dir, config.spool_max_bytes)
        self.stats = DeliveryStats()
        #: the queue on disk (the spool's lock covers it)
        self.journal = Journal(config.spool_dir)
        self._make_writer = make_writer
        self._writer: Writer | None = None
        #: the engine whose snapshots are exported
        self._engine: KpiEngine | None = None
        self._pending: deque[str] = deque()
        self._failures = 0
        self._next_attempt = 0.0  # loop time
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._stop_by = float("inf")  # loop time the shutdown stops replaying
        self._task: asyncio.Task[None] | None = None
        recovered = self.journal.recover()
        if recovered:
            log.warning(
                "points the last agent queued and never wrote: spooled for replay",
                extra={"exporter": self.name, "points": len(recovered)},
            )
            size = config.batch_size
            for first in range(0, len(recovered), size):
                self._to_spool(recovered[first : first + size])
        self.journal.rewrite([])

    # -- what a subclass says ---------------------------------------------

    def lines_of(self, snap: Snapshot, engine: KpiEngine) -> list[str]:
        """One snapshot as lines, each one point or sample with the
        snapshot's timestamp (in the engine's thread, right after its tick)."""
        raise NotImplementedError

    def refusal(self) -> tuple[str, dict[str, object]]:
        """What the log says, once, when the server refuses who we are,
        with what to check."""
        return "the server refused the writes: check the credentials", {}

    def where(self) -> dict[str, object]:
        """Where the lines go, as /readyz shows it after the state."""
        return {"url": self.config.shown_url}

    # -- intake ---------------------------------------------------------

    def on_snapshot(self, snap: Snapshot) -> None:
        """Runs in the engine's thread, hands the lines to the event loop;
        a snapshot before start() is not exported."""
        loop, engine = self._loop, self._engine
        if loop is None or engine is None:
            return
        lines = self.lines_of(snap, engine)
        loop.call_soon_threadsafe(self.offer, lines)

    def offer(self, lines: list[str]) -> None:
        """Queues points (on the event loop). Beyond the queue's bound the
        oldest go to the spool rather than being lost."""
        self.journal.append(lines)
        self._pending.extend(lines)
        self.stats.points_offered += len(lines)
        excess = len(self._pending) - self.config.queue_points
        if excess > 0:
            self._to_spool([self._pending.popleft() for _ in range(excess)])
            self.journal.rewrite(list(self._pending))  # the spilled ones are on disk
        if self._wake is not None and len(self._pending) >= self.config.batch_size:
            self._wake.set()

    # -- running --------------------------------------------------------

    async def start(self, engine: KpiEngine | None = None) -> None:
        """Begins writing; with `engine`, its snapshots are published as
        they come (without one, only what is offered)."""
        self._engine = engine
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._writer = self._make_writer()
        if self.spool.batches:
            log.warning(
                "the spool holds points from before, replaying them",
                extra={
                    "exporter": self.name,
                    "points": self.spool.points,
                    "batches": self.spool.batches,
                },
            )
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Writes or spools what is queued and replays the spool for at most
        `shutdown_timeout_s` (a write in flight then ends within `timeout_s`),
        then closes; the rest of the spool waits for the next start."""
        self._stopping = True
        if self._loop is not None:
            away = self.stats.state in (SPOOLING, REJECTED)  # do not wait on it
            self._stop_by = self._now() + (0.0 if away else self.config.shutdown_timeout_s)
        if self._wake is not None:
            self._wake.set()
        if self._task is not None:
            await self._task
        # offered while the last round was under way: kept on disk
        self._to_spool(list(self._pending))
        self._pending.clear()
        self.journal.rewrite([])
        if self._writer is not None:
            await self._writer.close()
        self.spool.close()
        self.stats.state = STOPPED

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._until_due())
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # the agent keeps measuring whatever the exporter meets
                log.exception("delivery round failed", extra={"exporter": self.name})
            if self._stopping:
                return

    def _until_due(self) -> float:
        wait = self.config.flush_interval_s
        if self.spool.batches:
            wait = min(wait, max(0.0, self._next_attempt - self._now()))
        return wait

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _may_attempt(self) -> bool:
        return self._next_attempt <= self._now() < self._stop_by

    async def flush(self) -> None:
        """One round: queued points into batches, the spool replayed while
        the server takes it, fresh batches written or spooled. A batch taken
        off the queue is always written, spooled or counted dropped: if the
        round fails half-way, the batches it had not finished go to the
        spool before the error goes on."""
        size = self.config.batch_size
        waiting: deque[list[str]] = deque()
        while self._pending:
            waiting.append([self._pending.popleft() for _ in range(min(size, len(self._pending)))])
        try:
            if self.spool.batches or not self._may_attempt():
                self._spool_all(waiting)
            await self._replay()
            while waiting:
                if self.spool.batches or not self._may_attempt():
                    self._spool_all(waiting)
                    return
                result = await self._send(waiting[0])
                if result.outcome in (Outcome.RETRY, Outcome.REJECTED):
                    self._spool_all(waiting)  # this batch included
                    return
                waiting.popleft()  # written, or counted dropped by _send
        finally:
            self._spool_all(waiting)
            # what was taken off the queue is written or spooled now
            self.journal.rewrite(list(self._pending))

    def _spool_all(self, batches: deque[list[str]]) -> None:
        while batches:
            self._to_spool(batches.popleft())

    async def _replay(self) -> None:
        while self.spool.batches and self._may_attempt():
            lost_before = self.spool.dropped
            batch = self.spool.oldest()
            if self.spool.dropped > lost_before:
                self.stats.dropped("spool_unreadable", self.spool.dropped - lost_before)
            if batch is None:
                return
            result = await self._send(batch.lines, replay=True)
            if result.outcome in (Outcome.RETRY, Outcome.REJECTED):
                return
            self.spool.remove(batch.seq)

    async def _send(self, lines: list[str], replay: bool = False) -> WriteResult:
        assert self._writer is not None
        result = await self._writer.write(lines)
        if result.outcome is Outcome.INVALID and result.status == 413 and len(lines) > 1:
            half = len(lines) // 2
            first = await self._send(lines[:half], replay)
            if first.outcome in (Outcome.RETRY, Outcome.REJECTED):
                return first  # the whole batch is retried; the half written is overwritten
            return await self._send(lines[half:], replay)
        self._account(result, len(lines), replay)
        return result

    def _account(self, result: WriteResult, points: int, replay: bool) -> None:
        s = self.stats
        if result.outcome is Outcome.WRITTEN:
            if s.state in (SPOOLING, REJECTED):
                log.warning(
                    "writing again", extra={"exporter": self.name, "after_failures": self._failures}
                )
            s.state = PUBLISHING
            s.points_written += points
            if replay:
                s.points_replayed += points
            s.last_success = self.clock()
            s.last_error = ""
            self._failures = 0
            self._next_attempt = 0.0
            return
        s.last_error = f"{result.status or 'no answer'}: {result.message}"
        if result.outcome is Outcome.INVALID:
            s.dropped(f"refused_{result.status}" if result.status else "unreadable", points)
            log.error(
                "batch refused by the server, dropped",
                extra={
                    "exporter": self.name,
                    "status": result.status,
                    "points": points,
                    "server_said": result.message,
                },
            )
            return
        self._failures += 1
        s.retries += 1
        if result.outcome is Outcome.REJECTED:
            delay = self.config.rejected_retry_s
            if s.state != REJECTED:
                message, context = self.refusal()
                log.error(
                    message,
                    extra={
                        "exporter": self.name,
                        "status": result.status,
                        "server_said": result.message,
                        **context,
                        "next_attempt_s": delay,
                    },
                )
            s.state = REJECTED
        else:
            delay = retry_delay(
                self._failures,
                self.config.retry_first_s,
                self.config.retry_max_s,
                result.retry_after,
                self.draw,
            )
            if s.state != SPOOLING:
                log.warning(
                    "cannot write, spooling",
                    extra={
                        "exporter": self.name,
                        "status": result.status,
                        "error": result.message,
                        "retry_in_s": delay,
                    },
                )
            s.state = SPOOLING
        self._next_attempt = self._now() + delay

    def _to_spool(self, lines: list[str]) -> None:
        if not lines:
            return
        try:
            dropped = self.spool.append(lines)
        except Exception as exc:  # disk full, directory gone: counted, not fatal
            self.stats.dropped("spool_write_failed", len(lines))
            log.error(
                "cannot spool, points dropped",
                extra={
                    "exporter": self.name,
                    "points": len(lines),
                    "error": exc.strerror if isinstance(exc, OSError) else str(exc),
                    "spool": str(self.spool.directory),
                },
            )
            return
        self.stats.points_spooled += len(lines)
        if dropped:
            self.stats.dropped("spool_full", dropped)

    # -- health ---------------------------------------------------------

    def health(self) -> ExporterHealth:
        """Not ok while the server refuses who we are (a configuration to
        fix); an unreachable server is an outage the spool rides out."""
        rejected = self.stats.state == REJECTED
        return ExporterHealth(
            self.name,
            ok=not rejected,
            problem=self.refused_problem if rejected else "",
            detail=self.summary(),
        )

    def summary(self) -> dict[str, object]:
        """The exporter's state and counts, as /readyz shows them."""
        s = self.stats
        return {
            "state": s.state,
            **self.where(),
            "points_written": s.points_written,
            "points_queued": len(self._pending),
            "points_spooled": s.points_spooled,
            "points_replayed": s.points_replayed,
            "points_dropped": sum(s.points_dropped.values()),
            "retries": s.retries,
            "spool_points": self.spool.points,
            "spool_bytes": self.spool.size,
            "last_success": s.last_success,
            "last_error": s.last_error,
        }
