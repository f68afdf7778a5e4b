"""The versioned routes are a sub-application mounted at /api/v1, and the
root's middlewares still hold them: an error inside comes back as problem
details, the token is asked for, the rate is limited; the probes, /metrics
and the dashboard stay at the root. Over the agent's runtime reading a data
plane the test feeds, never started (the service only reads it). No kernel,
no root."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from fake_data_plane import FakeDataPlane

from sauron.abi import layout
from sauron.agent.runtime import AgentRuntime
from sauron.catalog import Catalog, load_catalog
from sauron.service.app import ServiceOptions, create_app

TOKEN = "api-v1-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def served(
    catalog: Catalog,
    body: Callable[[TestClient[Any, Any]], Awaitable[None]],
    options: ServiceOptions | None = None,
) -> None:
    data = FakeDataPlane(catalog)
    runtime = AgentRuntime(catalog, data)
    embb = catalog.get("embb")
    assert embb is not None
    data.count(layout.POINT_N3_INGRESS, embb.id, layout.DIR_UPLINK, 7, 120)
    runtime.engine.tick()

    async def run() -> None:
        app = create_app(runtime, options or ServiceOptions(token=TOKEN))
        async with TestClient(TestServer(app)) as client:
            await body(client)

    asyncio.run(run())


def test_the_versioned_routes_are_a_sub_application(catalog: Catalog) -> None:
    app = create_app(AgentRuntime(catalog, FakeDataPlane(catalog)))
    (mounted,) = [r for r in app.router.resources() if isinstance(r, web.PrefixedSubAppResource)]
    assert mounted.canonical == "/api/v1"
    inside = {r.canonical for r in mounted.get_info()["app"].router.resources()}
    assert "/api/v1/slices/{name}/kpis" in inside and "/api/v1/openapi.json" in inside
    root = {r.canonical for r in app.router.resources()} - {"/api/v1"}
    assert {"/healthz", "/readyz", "/metrics", "/"} <= root
    assert not any(path.startswith("/api/") for path in root)


@pytest.mark.parametrize(
    ("path", "status", "param"),
    [
        ("/api/v1/slices/nope", 404, None),
        ("/api/v1/slices/embb/kpis?since=yesterday", 400, "since"),
        ("/api/v1/slices/embb/kpis?since=10&until=5", 400, "until"),
        ("/api/v1/slices/embb/histograms/transit", 400, "direction"),
        ("/api/v1/sessions?limit=0", 400, "limit"),
        ("/api/v1/nothing", 404, None),
    ],
)
def test_an_error_in_api_v1_is_a_problem_document(
    catalog: Catalog, path: str, status: int, param: str | None
) -> None:
    async def body(client: TestClient[Any, Any]) -> None:
        r = await client.get(path, headers=AUTH)
        assert r.status == status
        assert r.content_type == "application/problem+json"
        doc = await r.json()
        assert doc["status"] == status and doc["detail"] and doc.get("param") == param

    served(catalog, body)


def test_api_v1_asks_for_the_token_and_the_probes_do_not(catalog: Catalog) -> None:
    async def body(client: TestClient[Any, Any]) -> None:
        for path in ("/api/v1/slices", "/api/v1/sessions", "/api/v1/openapi.json", "/metrics"):
            refused = await client.get(path)
            assert refused.status == 401, path
            assert refused.content_type == "application/problem+json"
            assert refused.headers["WWW-Authenticate"] == 'Bearer realm="sauron"'
            wrong = await client.get(path, headers={"Authorization": "Bearer no"})
            assert wrong.status == 401, path
        ok = await client.get("/api/v1/slices/embb", headers=AUTH)
        assert ok.status == 200 and (await ok.json())["kpis"]["uplink"]["packets_in"] == 7
        for path in ("/healthz", "/readyz"):
            assert (await client.get(path)).status == 200, path

    served(catalog, body)


def test_without_a_token_the_per_session_routes_stay_closed_over_tcp(catalog: Catalog) -> None:
    async def body(client: TestClient[Any, Any]) -> None:
        assert (await client.get("/api/v1/slices")).status == 200
        for path in ("/api/v1/security", "/api/v1/slices/embb/security"):
            # per-slice counts, TEIDs and outer addresses: no UE's address
            assert (await client.get(path)).status == 200, path
        for path in ("/api/v1/sessions", "/api/v1/slices/embb/sessions"):
            closed = await client.get(path)
            assert closed.status == 403, path
            assert closed.content_type == "application/problem+json"

    served(catalog, body, ServiceOptions(rate_per_s=0))


def test_api_v1_is_rate_limited(catalog: Catalog) -> None:
    async def body(client: TestClient[Any, Any]) -> None:
        statuses = [(await client.get("/api/v1/sla", headers=AUTH)).status for _ in range(4)]
        assert statuses[:2] == [200, 200] and statuses[-1] == 429
        limited = await client.get("/api/v1/sla", headers=AUTH)
        assert limited.content_type == "application/problem+json"
        assert int(limited.headers["Retry-After"]) >= 1

    served(catalog, body, ServiceOptions(token=TOKEN, rate_per_s=0.1, burst=2))


def test_a_mistyped_slice_name_is_answered_with_the_nearest_one(catalog: Catalog) -> None:
    async def body(client: TestClient[Any, Any]) -> None:
        r = await client.get("/api/v1/slices/urlc/kpis", headers=AUTH)
        detail = (await r.json())["detail"]
        assert r.status == 404 and "did you mean 'urllc'?" in detail, detail
        far = await client.get("/api/v1/slices/zzzz", headers=AUTH)
        assert "did you mean" not in (await far.json())["detail"]
        r = await client.get("/api/v1/sessions?slice=mmct", headers=AUTH)
        assert r.status == 400 and "did you mean 'mmtc'?" in (await r.json())["detail"]

    served(catalog, body)
