"""A tick or a snapshot listener that fails is logged with its cause,
counted, tried again the next interval, and after failures in a row makes
/readyz answer 503 naming it; each listener fails alone. In-process over
real HTTP with the real programs' maps; test_hardening does the same to a
real agent process whose file descriptors run out."""

from __future__ import annotations

import asyncio
import errno
import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from sauron.bpf.loader import DataPlane
from sauron.bpf.maps import DataPlaneCounters, read_counters
from sauron.catalog import Catalog
from sauron.engine import KpiEngine
from sauron.publish.publisher import Publisher
from sauron.publish.settings import InfluxConfig
from sauron.publish.writer import Outcome, WriteResult
from sauron.service.app import create_app
from sauron.service.events import parse_events
from sauron.service.liveness import UNREADY_AFTER

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


async def wait_for(check: Any, within_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "not within the bound"
        await asyncio.sleep(INTERVAL)


def test_a_failed_tick_is_counted_reported_and_retried(
    dataplane: DataPlane, catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    reader = FlakyReader(dataplane)
    engine = KpiEngine(catalog, reader)

    async def run() -> None:
        app = create_app(engine, interval=INTERVAL)
        async with TestClient(TestServer(app)) as client:

            async def status(want: int) -> bool:
                return (await client.get("/readyz")).status == want

            await wait_for(lambda: status(200))
            reader.failing = True
            await wait_for(lambda: status(503))
            doc = await (await client.get("/readyz")).json()
            assert "tick failed" in doc["status"] and "Too many open files" in doc["status"]
            metrics = await (await client.get("/metrics")).text()
            assert metric(metrics, "sauron_tick_failures_total") >= UNREADY_AFTER
            frozen = doc["last_interval"]

            reader.failing = False
            await wait_for(lambda: status(200))
            later = await (await client.get("/readyz")).json()
            assert later["last_interval"] > frozen

    with caplog.at_level(logging.ERROR, logger="sauron"):
        asyncio.run(run())
    failures = [r for r in caplog.records if getattr(r, "part", None) == "tick"]
    assert failures and failures[0].exc_info is not None
    assert all("Too many open files" in r.__dict__["error"] for r in failures)


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
