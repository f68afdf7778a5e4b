"""The aiohttp application, built by create_app(): versioned REST routes
under /api/v1 over the KPI engine, health endpoints, and the engine's tick as
a background task."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from aiohttp import web

from sauron.catalog import Catalog, Slice
from sauron.engine import DirectionKpis, KpiEngine, SliceKpis, Snapshot
from sauron.quality import LatencyKpis
from sauron.service.metrics import CONTENT_TYPE as METRICS_TYPE
from sauron.service.metrics import render as render_metrics
from sauron.service.openapi import document as openapi_document
from sauron.service.problems import BadParameter, NotFound, problem_middleware
from sauron.service.stream import StreamHub, attach_hub, detach_hub

ENGINE = web.AppKey("engine", KpiEngine)
INTERVAL = web.AppKey("interval", float)
HUB = web.AppKey("hub", StreamHub)
MAX_SERIES_POINTS = 3600


def _slice_doc(s: Slice, latest: Snapshot | None) -> dict[str, Any]:
    snssai: dict[str, Any] = {
        "sst": s.spec.snssai.sst,
        "sd": None if s.spec.snssai.sd is None else f"{s.spec.snssai.sd:06x}",
    }
    doc: dict[str, Any] = {
        "name": s.name,
        "id": s.id,
        "snssai": snssai,
        "description": s.spec.description,
        "sla_targets": s.spec.sla.model_dump(exclude_none=True),
    }
    if latest is not None and s.name in latest.slices:
        kpis = latest.slices[s.name]
        doc["status"] = kpis.sla
        doc["kpis"] = {
            "time": latest.time,
            "interval_s": latest.interval_s,
            **_kpi_doc(kpis),
        }
    else:
        doc["status"] = "unmeasured"
    return doc


def _latency_doc(k: LatencyKpis) -> dict[str, Any]:
    """A latency KPI without its raw buckets (the histogram routes carry those)."""
    doc = asdict(k)
    del doc["buckets"], doc["sum_ns"]
    return doc


def _direction_doc(k: DirectionKpis) -> dict[str, Any]:
    doc = asdict(k)
    doc["transit"] = _latency_doc(k.transit)
    return doc


def _kpi_doc(k: SliceKpis) -> dict[str, Any]:
    return {
        "uplink": _direction_doc(k.uplink),
        "downlink": _direction_doc(k.downlink),
        "ran_rtt": _latency_doc(k.ran_rtt),
        "dn_rtt": _latency_doc(k.dn_rtt),
        "active_teids": k.active_teids,
        "active_ues": k.active_ues,
    }


def _catalog(request: web.Request) -> Catalog:
    return request.app[ENGINE].catalog


def _slice(request: web.Request) -> Slice:
    name = request.match_info["name"]
    found = _catalog(request).get(name)
    if found is None:
        raise NotFound(f"no slice named {name!r}")
    return found


def _float_param(request: web.Request, name: str, minimum: float | None = None) -> float | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadParameter(
            name, f"{name} must be a number (unix seconds or seconds), not {raw!r}"
        ) from None
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        raise BadParameter(
            name, f"{name} must be a finite number{'' if minimum is None else f' >= {minimum}'}"
        )
    return value


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    latest = request.app[ENGINE].history.latest()
    if latest is None:
        return web.json_response({"status": "waiting for the first interval"}, status=503)
    return web.json_response({"status": "ready", "last_interval": latest.time})


async def list_slices(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    latest = engine.history.latest()
    return web.json_response({"slices": [_slice_doc(s, latest) for s in engine.catalog.slices]})


async def get_slice(request: web.Request) -> web.Response:
    return web.json_response(_slice_doc(_slice(request), request.app[ENGINE].history.latest()))


async def slice_kpis(request: web.Request) -> web.Response:
    s = _slice(request)
    since = _float_param(request, "since")
    until = _float_param(request, "until")
    step = _float_param(request, "step", minimum=0)
    if since is not None and until is not None and until < since:
        raise BadParameter("until", "until is before since")
    points = []
    last_t = -math.inf
    for snap in request.app[ENGINE].history.between(since, until):
        if step and snap.time - last_t < step:
            continue
        last_t = snap.time
        k = snap.slices[s.name]
        points.append(
            {
                "time": snap.time,
                "interval_s": snap.interval_s,
                **_kpi_doc(k),
                "sla": k.sla,
            }
        )
    return web.json_response({"slice": s.name, "points": points[-MAX_SERIES_POINTS:]})


async def sla(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    events = [
        {
            "slice": v.slice_name,
            "target": v.target,
            "limit": v.limit,
            "worst": v.worst,
            "started_interval": v.started_interval,
            "ended_interval": v.ended_interval,
            "intervals": v.intervals,
            "open": v.open,
        }
        for v in engine.sla.events
    ]
    return web.json_response(
        {
            "status": {s.name: engine.sla.status(s.name) for s in engine.catalog.slices},
            "events": events,
        }
    )


async def metrics_route(request: web.Request) -> web.Response:
    return web.Response(
        text=render_metrics(request.app[ENGINE]), headers={"Content-Type": METRICS_TYPE}
    )


async def openapi_route(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


async def stream_route(request: web.Request) -> web.StreamResponse:
    return await request.app[HUB].serve(request)


async def stream_hub(app: web.Application) -> AsyncIterator[None]:
    hub = attach_hub(app[ENGINE], asyncio.get_running_loop())
    app[HUB] = hub
    yield
    detach_hub(app[ENGINE], hub)


async def _tick_forever(app: web.Application) -> None:
    engine, interval = app[ENGINE], app[INTERVAL]
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(interval)
        # map reads are blocking system calls: off the event loop
        await loop.run_in_executor(None, engine.tick)


async def engine_ticker(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(_tick_forever(app))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def create_app(engine: KpiEngine, interval: float = 1.0, tick: bool = True) -> web.Application:
    """tick=False leaves ticking to the caller (tests drive the engine)."""
    app = web.Application(middlewares=[problem_middleware], client_max_size=64 * 1024)
    app[ENGINE] = engine
    app[INTERVAL] = interval
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/api/v1/slices", list_slices)
    app.router.add_get("/api/v1/slices/{name}", get_slice)
    app.router.add_get("/api/v1/slices/{name}/kpis", slice_kpis)
    app.router.add_get("/api/v1/sla", sla)
    app.router.add_get("/api/v1/stream", stream_route)
    app.router.add_get("/api/v1/openapi.json", openapi_route)
    app.router.add_get("/metrics", metrics_route)
    app.cleanup_ctx.append(stream_hub)
    if tick:
        app.cleanup_ctx.append(engine_ticker)
    return app
