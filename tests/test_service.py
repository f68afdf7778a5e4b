"""The HTTP service over a KPI engine fed by the real programs: route shapes
and values, problem details for bad input, readiness, the background tick."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from frames import gtpu_raw, inner_v4, outer

from sauron.bpf import layout, libbpf
from sauron.bpf.loader import DataPlane
from sauron.bpf.maps import read_counters
from sauron.catalog import Catalog
from sauron.engine import KpiEngine
from sauron.service.app import create_app

pytestmark = [pytest.mark.kernel]


class Clock:
    def __init__(self) -> None:
        self.t = 2_000_000.0

    def __call__(self) -> float:
        return self.t


def with_client(
    engine: KpiEngine,
    body: Callable[[TestClient], Awaitable[Any]],
    tick: bool = False,
    interval: float = 1.0,
) -> Any:
    async def run() -> Any:
        async with TestClient(
            TestServer(create_app(engine, interval=interval, tick=tick))
        ) as client:
            return await body(client)

    return asyncio.run(run())


@pytest.fixture()
def engine(dataplane: DataPlane, catalog: Catalog) -> tuple[KpiEngine, Clock]:
    clock = Clock()
    return KpiEngine(catalog, lambda: read_counters(dataplane), clock=clock), clock


def test_slices_kpis_and_sla(dataplane: DataPlane, engine: tuple[KpiEngine, Clock]) -> None:
    eng, clock = engine
    frame = outer(gtpu_raw(0x10001, payload=inner_v4(src="10.45.0.9")))
    for second in range(3):
        for _ in range(10 * (second + 1)):
            libbpf.test_run(dataplane.program_fd(layout.POINT_N3_INGRESS), frame)
        clock.t += 1
        eng.tick()

    async def body(client: TestClient) -> None:
        r = await client.get("/api/v1/slices")
        assert r.status == 200
        slices = (await r.json())["slices"]
        assert [s["name"] for s in slices] == ["embb", "urllc", "mmtc"]
        embb = slices[0]
        assert embb["snssai"] == {"sst": 1, "sd": "000001"} and embb["id"] == 1
        assert embb["kpis"]["uplink"]["packets_in"] == 30 and embb["kpis"]["active_teids"] == 1
        assert embb["sla_targets"]["min_throughput_mbps"] == {"downlink": 1.0}

        one = await (await client.get("/api/v1/slices/urllc")).json()
        assert one["name"] == "urllc" and one["kpis"]["uplink"]["packets_in"] == 0

        series = await (await client.get("/api/v1/slices/embb/kpis")).json()
        assert [p["uplink"]["packets_in"] for p in series["points"]] == [10, 20, 30]
        since = clock.t - 1.5
        part = await (await client.get(f"/api/v1/slices/embb/kpis?since={since}")).json()
        assert [p["uplink"]["packets_in"] for p in part["points"]] == [20, 30]
        stepped = await (await client.get("/api/v1/slices/embb/kpis?step=2")).json()
        assert [p["uplink"]["packets_in"] for p in stepped["points"]] == [10, 30]

        s = await (await client.get("/api/v1/sla")).json()
        # eMBB asks for 1 Mbit/s downlink and got nothing for three intervals
        assert s["status"]["embb"] == "violated"
        assert s["events"][0]["target"] == "min_throughput_mbps.downlink" and s["events"][0]["open"]

    with_client(eng, body)


@pytest.mark.parametrize(
    ("path", "status", "param"),
    [
        ("/api/v1/slices/nope", 404, None),
        ("/api/v1/slices/nope/kpis", 404, None),
        ("/api/v1/slices/embb/kpis?since=yesterday", 400, "since"),
        ("/api/v1/slices/embb/kpis?step=-1", 400, "step"),
        ("/api/v1/slices/embb/kpis?since=10&until=5", 400, "until"),
        ("/api/v1/slices/embb/kpis?until=nan", 400, "until"),
        ("/api/v1/nothing", 404, None),
    ],
)
def test_bad_requests_get_problem_details(
    engine: tuple[KpiEngine, Clock], path: str, status: int, param: str | None
) -> None:
    async def body(client: TestClient) -> None:
        r = await client.get(path)
        assert r.status == status
        assert r.content_type == "application/problem+json"
        doc = await r.json()
        assert doc["status"] == status and doc["detail"]
        assert doc.get("param") == param
        assert "Traceback" not in await r.text()

    with_client(engine[0], body)


def test_readiness_follows_the_background_tick(dataplane: DataPlane, catalog: Catalog) -> None:
    eng = KpiEngine(catalog, lambda: read_counters(dataplane))

    async def body(client: TestClient) -> None:
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/readyz")).status == 503
        for _ in range(100):
            await asyncio.sleep(0.02)
            if (await client.get("/readyz")).status == 200:
                break
        assert (await client.get("/readyz")).status == 200
        assert len(eng.history) >= 1

    with_client(eng, body, tick=True, interval=0.05)
