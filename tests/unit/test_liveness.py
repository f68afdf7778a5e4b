"""A tick or a snapshot listener that fails is logged with its cause,
counted, tried again the next interval, and after failures in a row makes
/readyz answer 503 naming it; each listener fails alone. In-process over
real HTTP, the agent's runtime reading a data plane the test feeds and
breaks; test_hardening does the same to a real agent process whose file
descriptors run out."""

from __future__ import annotations

import asyncio
import errno
import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from fake_data_plane import FakeDataPlane

from sauron.agent.runtime import AgentRuntime
from sauron.catalog import Catalog
from sauron.export.delivery.outcome import Outcome, WriteResult
from sauron.export.influx.publisher import Publisher
from sauron.export.influx.settings import InfluxConfig
from sauron.kpi.liveness import HUNG_AT_LEAST_S, UNREADY_AFTER, Liveness
from sauron.service.app import create_app
from sauron.service.events import parse_events

INTERVAL = 0.05
EMFILE = OSError(errno.EMFILE, "Too many open files")


def metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


async def readyz_is(client: TestClient[Any, Any], want: int) -> bool:
    return (await client.get("/readyz")).status == want


async def wait_for(check: Any, within_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "not within the bound"
        await asyncio.sleep(INTERVAL)


def served_ready(data: FakeDataPlane, catalog: Catalog, then: Any) -> None:
    """The runtime ticking an engine over `data` and served, once ready:
    `then(client)`."""
    runtime = AgentRuntime(catalog, data, interval_s=INTERVAL)

    async def run() -> None:
        async with runtime, TestClient(TestServer(create_app(runtime))) as client:
            await wait_for(lambda: readyz_is(client, 200))
            await then(client)

    asyncio.run(run())


def test_a_failed_tick_is_counted_reported_and_retried(
    catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    data = FakeDataPlane(catalog)

    async def fail_then_recover(client: TestClient[Any, Any]) -> None:
        data.failure = EMFILE
        await wait_for(lambda: readyz_is(client, 503))
        doc = await (await client.get("/readyz")).json()
        assert "tick failed" in doc["status"] and "Too many open files" in doc["status"]
        metrics = await (await client.get("/metrics")).text()
        assert metric(metrics, "sauron_tick_failures_total") >= UNREADY_AFTER
        frozen = doc["last_interval"]
        data.failure = None
        await wait_for(lambda: readyz_is(client, 200))
        later = await (await client.get("/readyz")).json()
        assert later["last_interval"] > frozen

    with caplog.at_level(logging.ERROR, logger="sauron"):
        served_ready(data, catalog, fail_then_recover)
    failures = [r for r in caplog.records if getattr(r, "part", None) == "tick"]
    assert failures and failures[0].exc_info is not None
    assert all("Too many open files" in r.__dict__["error"] for r in failures)


def test_a_hung_tick_is_told_by_its_age(catalog: Catalog) -> None:
    """A reading that does not return (a map or /proc read stuck in the
    kernel fails nothing)."""
    data = FakeDataPlane(catalog)

    async def hang_then_return(client: TestClient[Any, Any]) -> None:
        data.released.clear()
        await wait_for(lambda: readyz_is(client, 503), within_s=HUNG_AT_LEAST_S + 10)
        doc = await (await client.get("/readyz")).json()
        assert "the tick has not returned for" in doc["status"], doc
        data.released.set()
        await wait_for(lambda: readyz_is(client, 200))

    served_ready(data, catalog, hang_then_return)


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
    catalog: Catalog, tmp_path: Any
) -> None:
    config = InfluxConfig(url="http://127.0.0.1:9", spool_dir=tmp_path / "spool")
    publisher = Publisher(config, "node", None, writer_factory=NeverWrites)

    def broken(*_: object) -> list[str]:
        raise RuntimeError("points cannot be made")

    publisher.points_of = broken  # type: ignore[method-assign]

    async def run() -> None:
        runtime = AgentRuntime(
            catalog, FakeDataPlane(catalog), interval_s=INTERVAL, exporters=[publisher]
        )
        async with runtime, TestClient(TestServer(create_app(runtime))) as client:
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
