"""Driving an exporter that pushes (the InfluxDB publisher, the remote
write) with a real engine: ticks on a manual clock with the exporter
running, until everything it was offered has left its queue and spool."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from manual_clock import ManualClock

from sauron.agent.runtime import AgentRuntime
from sauron.export.delivery.lossless import LosslessExporter


def run_ticks(
    publisher: LosslessExporter[Any],
    runtime: AgentRuntime,
    clock: ManualClock,
    ticks: int,
    between: Callable[[int], None] = lambda n: None,
    pause: float = 0.15,
) -> list[float]:
    """Ticks the engine of `runtime` (not started; `publisher` one of its
    exporters) `ticks` times, a second apart on its clock, with the
    publisher running, calling `between(n)` before tick n; returns the
    snapshot times."""
    times: list[float] = []

    async def go() -> None:
        await publisher.start(runtime.engine)
        loop = asyncio.get_running_loop()
        try:
            for n in range(ticks):
                await loop.run_in_executor(None, between, n)
                clock.t += 1
                snap = await loop.run_in_executor(None, runtime.engine.tick)
                times.append(snap.time)
                await asyncio.sleep(pause)
            deadline = time.monotonic() + 60
            while (
                publisher.spool.points or publisher.stats.points_offered != settled(publisher)
            ) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
        finally:
            await publisher.stop()

    asyncio.run(go())
    return times


def settled(p: LosslessExporter[Any]) -> int:
    """Points that have left the queue one way or the other."""
    return p.stats.points_written + sum(p.stats.points_dropped.values()) + p.spool.points


def recording_offers(publisher: LosslessExporter[Any]) -> list[str]:
    """Every line offered to the publisher from now on, as it is offered."""
    sent: list[str] = []
    original = publisher.offer

    def offer(lines: list[str]) -> None:
        sent.extend(lines)
        original(lines)

    publisher.offer = offer  # type: ignore[method-assign]
    return sent
