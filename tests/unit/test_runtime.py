"""The agent's runtime over a data plane the test feeds: one tick per
interval, the exporters and the control plane started in order and stopped
in the reverse order, a tick under way finished before anything stops (for
a bounded time), a part that cannot start undoing the others, an exporter
that raises counted and alone, the publisher's last points written on
stop. No kernel, no root."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fake_data_plane import FakeDataPlane

from sauron.abi import layout
from sauron.agent import runtime as runtime_module
from sauron.agent.runtime import AgentRuntime
from sauron.catalog import Catalog, load_catalog
from sauron.export.delivery.outcome import Outcome, WriteResult
from sauron.export.exporter import ExporterHealth
from sauron.export.influx.publisher import STOPPED, Publisher
from sauron.export.influx.settings import InfluxConfig
from sauron.kpi.engine import KpiEngine
from sauron.kpi.liveness import TICK
from sauron.kpi.records import Snapshot

INTERVAL = 0.05


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


class Recording:
    """An exporter that writes down what happens to it in `events`."""

    def __init__(
        self, name: str, events: list[str], fails_to_start: bool = False, raises: bool = False
    ) -> None:
        self.name, self.events = name, events
        self.fails_to_start, self.raises = fails_to_start, raises
        self.engine: KpiEngine | None = None
        self.snapshots: list[Snapshot] = []

    async def start(self, engine: KpiEngine) -> None:
        self.events.append(f"{self.name} start")
        if self.fails_to_start:
            raise RuntimeError(f"{self.name} cannot start")
        self.engine = engine

    async def stop(self) -> None:
        self.events.append(f"{self.name} stop")

    def on_snapshot(self, snapshot: Snapshot) -> None:
        if self.raises:
            raise ValueError("not this one")
        self.snapshots.append(snapshot)
        self.events.append(f"{self.name} snapshot")

    def health(self) -> ExporterHealth:
        return ExporterHealth(self.name)


class Control:
    """The control plane's start and stop, written down."""

    def __init__(self, events: list[str]) -> None:
        self.events = events

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.events.append("control start")

    async def stop(self) -> None:
        self.events.append("control stop")


def test_one_tick_per_interval_parts_started_in_order_and_stopped_in_reverse(
    catalog: Catalog,
) -> None:
    events: list[str] = []
    data = FakeDataPlane(catalog)
    first, second = Recording("first", events), Recording("second", events)
    runtime = AgentRuntime(
        catalog,
        data,
        interval_s=INTERVAL,
        control=Control(events),  # type: ignore[arg-type]
        exporters=[first, second],
    )
    embb = catalog.get("embb")
    assert embb is not None

    async def run() -> float:
        began = time.monotonic()
        async with runtime:
            assert first.engine is runtime.engine
            while len(runtime.engine.history) < 4:
                data.count(layout.POINT_N3_INGRESS, embb.id, layout.DIR_UPLINK, 10, 100)
                await asyncio.sleep(INTERVAL / 2)
        return time.monotonic() - began

    took = asyncio.run(run())
    assert events[:3] == ["first start", "second start", "control start"]
    assert events[-3:] == ["control stop", "second stop", "first stop"]
    # never more than one tick per interval, the first one interval after start
    assert 4 <= len(runtime.engine.history) <= took / INTERVAL
    assert runtime.liveness.failures()[TICK] == 0
    # every snapshot reached every exporter, in the engine's order
    assert first.snapshots == second.snapshots == runtime.engine.history.between()
    assert sum(s.slices["embb"].uplink.packets_in for s in first.snapshots) > 0
    assert runtime.liveness.interval_s == INTERVAL


def test_a_failed_reading_is_counted_and_the_next_interval_reads_again(
    catalog: Catalog,
) -> None:
    data = FakeDataPlane(catalog)
    runtime = AgentRuntime(catalog, data, interval_s=INTERVAL)

    async def run() -> None:
        async with runtime:
            data.failure = OSError(24, "Too many open files")
            while runtime.liveness.failures()[TICK] < 3:
                await asyncio.sleep(INTERVAL)
            assert any("Too many open files" in p for p in runtime.problems())
            data.failure = None
            before = len(runtime.engine.history)
            while runtime.problems():
                await asyncio.sleep(INTERVAL)
            assert len(runtime.engine.history) > before

    asyncio.run(run())


def test_stopping_lets_a_tick_under_way_end_first(catalog: Catalog) -> None:
    """The tick's snapshot reaches the exporters before they stop, so the
    publisher's last points are neither lost nor late."""
    events: list[str] = []
    data = FakeDataPlane(catalog)
    exporter = Recording("exporter", events)
    runtime = AgentRuntime(catalog, data, interval_s=INTERVAL, exporters=[exporter])

    async def run() -> None:
        async with runtime:
            data.released.clear()  # the next reading hangs
            while runtime.liveness.tick_started is None:
                await asyncio.sleep(0.01)
            threading.Timer(0.3, data.released.set).start()

    asyncio.run(run())
    assert events[-2:] == ["exporter snapshot", "exporter stop"]


def test_stopping_waits_for_a_hung_tick_only_so_long(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime_module, "SHUTDOWN_TICK_WAIT_S", 0.2)
    events: list[str] = []
    data = FakeDataPlane(catalog)
    runtime = AgentRuntime(
        catalog, data, interval_s=INTERVAL, exporters=[Recording("exporter", events)]
    )

    async def run() -> float:
        await runtime.start()
        data.released.clear()
        while runtime.liveness.tick_started is None:
            await asyncio.sleep(0.01)
        began = time.monotonic()
        try:
            await runtime.stop()
            return time.monotonic() - began
        finally:
            data.released.set()  # the reading's thread ends (asyncio.run waits for it)

    took = asyncio.run(run())
    # stopped after the bound: the hung reading's snapshot, if it ever comes, comes late
    assert 0.15 <= took < 2 and "exporter stop" in events


def test_a_part_that_cannot_start_stops_those_started_before_it(catalog: Catalog) -> None:
    events: list[str] = []
    runtime = AgentRuntime(
        catalog,
        FakeDataPlane(catalog),
        interval_s=INTERVAL,
        control=Control(events),  # type: ignore[arg-type]
        exporters=[Recording("first", events), Recording("second", events, fails_to_start=True)],
    )

    async def run() -> None:
        with pytest.raises(RuntimeError, match="second cannot start"):
            await runtime.start()
        await runtime.stop()  # nothing left to stop

    asyncio.run(run())
    assert events == ["first start", "second start", "first stop"]
    assert len(runtime.engine.history) == 0


def test_an_exporter_that_raises_is_counted_and_the_others_hear_the_snapshot(
    catalog: Catalog,
) -> None:
    """On a runtime nobody started, ticked by hand."""
    events: list[str] = []
    broken, fine = Recording("broken", events, raises=True), Recording("fine", events)
    runtime = AgentRuntime(catalog, FakeDataPlane(catalog), exporters=[broken, fine])
    for _ in range(2):
        runtime.engine.tick()
    assert len(fine.snapshots) == 2
    failures = runtime.liveness.failures()
    assert failures["broken"] == 2 and failures["fine"] == 0 and "prometheus" not in failures
    assert 'sauron_listener_failures_total{listener="broken"} 2' in "".join(runtime.exposition())


class Written:
    """A server that takes every batch."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    async def write(self, lines: list[str]) -> WriteResult:
        self.lines += lines
        return WriteResult(Outcome.WRITTEN, 204, "")

    async def close(self) -> None:
        pass


def test_the_publisher_writes_what_is_queued_when_the_runtime_stops(
    catalog: Catalog, tmp_path: Path
) -> None:
    """Nothing is flushed while the runtime runs (5 minutes between flushes):
    every point reaches the server on stop."""
    server = Written()
    config = InfluxConfig(
        url="http://127.0.0.1:9", spool_dir=tmp_path / "spool", flush_interval_s=300
    )
    publisher = Publisher(config, "node", None, writer_factory=lambda: server)
    runtime = AgentRuntime(
        catalog, FakeDataPlane(catalog), interval_s=INTERVAL, exporters=[publisher]
    )

    async def run() -> Any:
        async with runtime:
            while len(runtime.engine.history) < 3:
                await asyncio.sleep(INTERVAL)
            return list(server.lines)

    before_stop = asyncio.run(run())
    s = publisher.stats
    assert before_stop == [] and s.state == STOPPED
    assert s.points_offered > 0 and s.points_written + s.points_spooled == s.points_offered
    assert len(server.lines) == s.points_written > 0
