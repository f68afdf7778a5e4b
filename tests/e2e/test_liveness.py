"""A tick or a snapshot listener that fails is logged with its cause,
counted, tried again the next interval, and after failures in a row makes
/readyz answer 503 naming it; each listener fails alone. In-process over
real HTTP with the real programs' maps; test_hardening does the same to a
real agent process whose file descriptors run out."""

from __future__ import annotations

import asyncio
import errno
import logging
import threading
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from sauron.bpf.loader import DataPlane
from sauron.bpf.maps import DataPlaneCounters, read_counters
from sauron.catalog import Catalog
from sauron.export.influx.publisher import Publisher
from sauron.export.influx.settings import InfluxConfig
from sauron.export.influx.writer import Outcome, WriteResult
from sauron.kpi.engine import KpiEngine
from sauron.kpi.liveness import HUNG_AT_LEAST_S, UNREADY_AFTER, Liveness
from sauron.service.app import create_app
from sauron.service.events import parse_events

pytestmark = [pytest.mark.kernel]
INTERVAL = 0.05


class FlakyReader:
    """The real maps, or EMFILE while `failing` is set."""

    def __init__(self, dataplane: DataPlane) -> None:
        self.dataplane = dataplane
        self.failing = False

    def __call__(self) -> DataPlaneCounters:
        if self.failing:
            raise OSError(errno.EMFILE, "Too many open files")
        return read_counters(self.dataplane)


def metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


async def readyz_is(client: TestClient[Any, Any], want: int) -> bool:
    return (await client.get("/readyz")).status == want


async def wait_for(check: Any, within_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "not within the bound"
        await asyncio.sleep(INTERVAL)


def served_ready(reader: Any, catalog: Catalog, then: Any) -> None:
    """The app ticking an engine over `reader`, once ready: `then(client)`."""
    engine = KpiEngine(catalog, reader)

    async def run() -> None:
        async with TestClient(TestServer(create_app(engine, interval=INTERVAL))) as client:
            await wait_for(lambda: readyz_is(client, 200))
            await then(client)

    asyncio.run(run())


def test_a_failed_tick_is_counted_reported_and_retried(
    dataplane: DataPlane, catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    reader = FlakyReader(dataplane)

    async def fail_then_recover(client: TestClient[Any, Any]) -> None:
        reader.failing = True
        await wait_for(lambda: readyz_is(client, 503))
        doc = await (await client.get("/readyz")).json()
        assert "tick failed" in doc["status"] and "Too many open files" in doc["status"]
        metrics = await (await client.get("/metrics")).text()
        assert metric(metrics, "sauron_tick_failures_total") >= UNREADY_AFTER
        frozen = doc["last_interval"]
        reader.failing = False
        await wait_for(lambda: readyz_is(client, 200))
        later = await (await client.get("/readyz")).json()
        assert later["last_interval"] > frozen

    with caplog.at_level(logging.ERROR, logger="sauron"):
        served_ready(reader, catalog, fail_then_recover)
    failures = [r for r in caplog.records if getattr(r, "part", None) == "tick"]
    assert failures and failures[0].exc_info is not None
    assert all("Too many open files" in r.__dict__["error"] for r in failures)


class HangingReader(FlakyReader):
    """The real maps, or a read that does not return while `hanging` is set
    (a map or /proc read stuck in the kernel fails nothing)."""

    def __init__(self, dataplane: DataPlane) -> None:
        super().__init__(dataplane)
        self.released = threading.Event()
        self.released.set()

    def __call__(self) -> DataPlaneCounters:
        self.released.wait()
        return super().__call__()


def test_a_hung_tick_is_told_by_its_age(dataplane: DataPlane, catalog: Catalog) -> None:
    reader = HangingReader(dataplane)

    async def hang_then_return(client: TestClient[Any, Any]) -> None:
        reader.released.clear()
        await wait_for(lambda: readyz_is(client, 503), within_s=HUNG_AT_LEAST_S + 10)
        doc = await (await client.get("/readyz")).json()
        assert "the tick has not returned for" in doc["status"], doc
        reader.released.set()
        await wait_for(lambda: readyz_is(client, 200))

    served_ready(reader, catalog, hang_then_return)


def test_a_tick_is_hung_after_three_intervals_and_five_seconds_at_least() -> None:
    now = [100.0]
    liveness = Liveness(clock=lambda: now[0])
    liveness.tick_begins()
    now[0] += 60
    assert liveness.problems() == []  # no ticker of its own: the driver's business
    liveness.interval_s = 1.0
    liveness.tick_begins()
    now[0] += HUNG_AT_LEAST_S - 0.5
    assert liveness.problems() == []
    now[0] += 1.5
    assert liveness.problems() == ["the tick has not returned for 6 s"]
    liveness.interval_s = 10.0  # three intervals: 30 s
    assert liveness.problems() == []
    now[0] += 30
    liveness.tick_ends()
    assert liveness.problems() == []


class NeverWrites:
    async def write(self, lines: list[str]) -> WriteResult:
        return WriteResult(Outcome.RETRY, None, "not in this test")

    async def close(self) -> None:
        pass


def test_a_failing_listener_stops_neither_the_tick_nor_the_others(
    dataplane: DataPlane, catalog: Catalog, tmp_path: Any
) -> None:
    engine = KpiEngine(catalog, lambda: read_counters(dataplane))
    config = InfluxConfig(url="http://127.0.0.1:9", spool_dir=tmp_path / "spool")
    publisher = Publisher(config, "node", None, writer_factory=NeverWrites)

    def broken(*_: object) -> list[str]:
        raise RuntimeError("points cannot be made")

    publisher.points_of = broken  # type: ignore[method-assign]

    async def run() -> None:
        app = create_app(engine, interval=INTERVAL, publisher=publisher)
        async with TestClient(TestServer(app)) as client:
            stream = await client.get("/api/v1/stream")
            buffer, events = "", []
            while len(events) < UNREADY_AFTER + 2:
                buffer += (await asyncio.wait_for(stream.content.readany(), 10)).decode()
                *done, buffer = buffer.split("\n\n")
                events += parse_events("\n\n".join(done) + "\n\n")
            stream.close()
            r = await client.get("/readyz")
            doc = await r.json()
            assert r.status == 503
            assert "publisher failed" in doc["status"] and "points cannot be made" in doc["status"]
            assert "tick" not in doc["status"]
            metrics = await (await client.get("/metrics")).text()
            assert metric(metrics, 'sauron_listener_failures_total{listener="publisher"}') >= 3
            assert metric(metrics, 'sauron_listener_failures_total{listener="stream"}') == 0
            assert metric(metrics, "sauron_tick_failures_total") == 0

    asyncio.run(run())
