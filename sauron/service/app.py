"""The aiohttp application, built by create_app() over a view of the agent's
runtime (sauron.service.view): versioned REST routes under /api/v1, health
endpoints, the exposition and the dashboard. It reads the agent and never
runs it: the runtime ticks the engine, starts and stops the exporters and
the control plane (sauron.agent.runtime)."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware

from sauron.abi import layout
from sauron.abi.histogram import GAP, LATENCY, Histogram
from sauron.catalog import UNCLASSIFIED_NAME, Catalog, Slice
from sauron.control.record import ControlSession
from sauron.export.prometheus import CONTENT_TYPE as METRICS_TYPE
from sauron.kpi.engine import KpiEngine
from sauron.kpi.quality import NS_PER_MS
from sauron.kpi.records import Snapshot
from sauron.kpi.sessions import TOP_SESSIONS, SessionVolume
from sauron.service.dashboard.routes import add_dashboard
from sauron.service.documents import (
    energy_doc,
    geometry_doc,
    histogram_doc,
    point_doc,
    session_doc,
    slice_doc,
    unclassified_doc,
    violation_doc,
)
from sauron.service.guard import RateLimiter, access_middleware, rate_middleware
from sauron.service.openapi import TEID_PATTERN
from sauron.service.openapi import document as openapi_document
from sauron.service.problems import BadParameter, NotFound, problem_middleware
from sauron.service.stream import StreamHub
from sauron.service.view import AgentView

AGENT = web.AppKey[AgentView]("agent")
HUB = web.AppKey("hub", StreamHub)
MAX_PDU_SESSIONS = 10_000
MAX_SERIES_POINTS = 3600
MAX_REQUEST_BYTES = 64 * 1024


@dataclass(frozen=True)
class ServiceOptions:
    """token: required as `Authorization: Bearer` on every route but the
    health probes and the dashboard's files (None: no token, and the
    per-session routes closed but over the UNIX socket; see guard).
    rate_per_s: requests per second per client address, bursts of `burst`
    (0: no limit)."""

    token: str | None = None
    rate_per_s: float = 100.0
    burst: float = 200.0


def _engine(request: web.Request) -> KpiEngine:
    return request.app[AGENT].engine


def _catalog(request: web.Request) -> Catalog:
    return _engine(request).catalog


@dataclass(frozen=True)
class MeasuredSlice:
    """What the per-slice routes answer for: a catalog slice, or
    `unclassified` (slice 0, no catalog entry), whose KPIs the engine
    measures like any slice's."""

    name: str
    id: int
    #: None for unclassified
    entry: Slice | None


def _slice(request: web.Request) -> MeasuredSlice:
    name = request.match_info["name"]
    if name == UNCLASSIFIED_NAME:
        return MeasuredSlice(name, layout.UNCLASSIFIED_SLICE, None)
    found = _catalog(request).get(name)
    if found is None:
        known = [*(s.name for s in _catalog(request).slices), UNCLASSIFIED_NAME]
        raise NotFound(f"no slice named {name!r}; there are {', '.join(known)}")
    return MeasuredSlice(found.name, found.id, found)


def _bool_param(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "false")
    if raw not in ("true", "false"):
        raise BadParameter(name, f"{name} must be true or false, not {raw!r}")
    return raw == "true"


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
    """Ready once an interval is done; not ready while the tick or a
    snapshot listener fails interval after interval (the body names it and
    the cause), nor while an exporter says so (the InfluxDB server refusing
    the publisher: a configuration to fix). An unreachable server is an
    outage the spool rides out: ready, and the body says so."""
    agent = request.app[AGENT]
    latest = agent.engine.history.latest()
    body: dict[str, object] = {}
    reasons = agent.problems()
    if latest is None:
        reasons.insert(0, "waiting for the first interval")
    else:
        body["last_interval"] = latest.time
    for health in agent.exporter_health():
        if health.detail is not None:
            body[health.name] = health.detail
        if not health.ok:
            reasons.append(health.problem)
    status = "; ".join(reasons) or "ready"
    return web.json_response({"status": status, **body}, status=503 if reasons else 200)


def _status(request: web.Request, name: str) -> str:
    return _engine(request).sla.status(name)


async def list_slices(request: web.Request) -> web.Response:
    engine = _engine(request)
    latest = engine.history.latest()
    return web.json_response(
        {"slices": [slice_doc(s, latest, _status(request, s.name)) for s in engine.catalog.slices]}
    )


async def get_slice(request: web.Request) -> web.Response:
    s = _slice(request)
    latest, status = _engine(request).history.latest(), _status(request, s.name)
    if s.entry is None:
        return web.json_response(unclassified_doc(latest, status))
    return web.json_response(slice_doc(s.entry, latest, status))


def _window(request: web.Request) -> list[Snapshot]:
    """The snapshots between `since` and `until` (both optional)."""
    since = _float_param(request, "since")
    until = _float_param(request, "until")
    if since is not None and until is not None and until < since:
        raise BadParameter("until", "until is before since")
    return _engine(request).history.between(since, until)


async def slice_kpis(request: web.Request) -> web.Response:
    s = _slice(request)
    snaps = _window(request)
    step = _float_param(request, "step", minimum=0)
    buckets = _bool_param(request, "buckets")
    points = []
    last_t = -math.inf
    for snap in snaps:
        if step and snap.time - last_t < step:
            continue
        last_t = snap.time
        points.append(point_doc(snap, snap.slices[s.name], buckets))
    return web.json_response({"slice": s.name, "points": points[-MAX_SERIES_POINTS:]})


#: metric -> (per direction, unit); latency metrics in ms, loss bursts in packets
HISTOGRAM_METRICS = {
    "transit": (True, "ms"),
    "ran_rtt": (False, "ms"),
    "dn_rtt": (False, "ms"),
    "loss_burst": (True, "packets"),
}
DIRECTIONS = ("uplink", "downlink")


def _choice(request: web.Request, name: str, choices: tuple[str, ...], default: str | None) -> str:
    raw = request.query.get(name, default)
    if raw is None:
        raise BadParameter(name, f"{name} is required: one of {', '.join(choices)}")
    if raw not in choices:
        raise BadParameter(name, f"{name} must be one of {', '.join(choices)}, not {raw!r}")
    return raw


async def geometry(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "latency": geometry_doc(LATENCY, NS_PER_MS, "ms"),
            "loss_burst": geometry_doc(GAP, 1.0, "packets"),
        }
    )


async def slice_histogram(request: web.Request) -> web.Response:
    s = _slice(request)
    metric = request.match_info["metric"]
    if metric not in HISTOGRAM_METRICS:
        raise NotFound(f"no histogram named {metric!r}; there are {', '.join(HISTOGRAM_METRICS)}")
    per_direction, unit = HISTOGRAM_METRICS[metric]
    direction = _choice(request, "direction", DIRECTIONS, None) if per_direction else None
    if not per_direction and "direction" in request.query:
        raise BadParameter("direction", f"{metric} is a round trip: it has no direction")
    if "since" in request.query or "until" in request.query:
        snaps = _window(request)
    else:
        latest = _engine(request).history.latest()
        snaps = [] if latest is None else [latest]
    total = Histogram(GAP if metric == "loss_burst" else LATENCY)
    for snap in snaps:
        k = snap.slices[s.name]
        if metric == "loss_burst":
            total.add(getattr(k, str(direction)).loss.bursts())
        else:
            kpis = getattr(k, str(direction)).transit if metric == "transit" else getattr(k, metric)
            if kpis.samples:
                total.add(kpis.histogram())
    doc = histogram_doc(total, NS_PER_MS if unit == "ms" else 1.0, exact_sum=metric != "loss_burst")
    return web.json_response(
        {
            "slice": s.name,
            "metric": metric,
            "direction": direction,
            "unit": unit,
            "intervals": len(snaps),
            "since": snaps[0].time - snaps[0].interval_s if snaps else None,
            "until": snaps[-1].time if snaps else None,
            **doc,
        }
    )


def _int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(name, f"{name} must be an integer, not {raw!r}") from None
    if not lo <= value <= hi:
        raise BadParameter(name, f"{name} must be between {lo} and {hi}")
    return value


async def slice_sessions(request: web.Request) -> web.Response:
    s = _slice(request)
    by = _choice(request, "by", ("teid", "ue"), "teid")
    limit = _int_param(request, "limit", 10, 1, TOP_SESSIONS)
    engine = _engine(request)
    activity = engine.sessions.teids if by == "teid" else engine.sessions.ues
    latest = engine.history.latest()
    control = request.app[AGENT].control
    owners_by_teid = control.registry.by_teid() if control is not None else {}
    owners_by_ue = control.registry.by_ue() if control is not None else {}

    def owner(v: SessionVolume) -> ControlSession | None:
        if v.teid is not None:
            return owners_by_teid.get(v.teid)
        return owners_by_ue.get(v.ue_address or "")

    return web.json_response(
        {
            "slice": s.name,
            "by": by,
            "time": None if latest is None else latest.time,
            "interval_s": None if latest is None else latest.interval_s,
            "active": activity.active.get(s.id, 0),
            "sessions": [session_doc(v, owner(v)) for v in activity.top.get(s.id, [])[:limit]],
        }
    )


async def pdu_sessions(request: web.Request) -> web.Response:
    """The session table: PDU sessions learned from PFCP or an SMF."""
    state = _choice(request, "state", ("active", "ended", "all"), "active")
    source = _choice(request, "source", ("pfcp", "smf", "any"), "any")
    limit = _int_param(request, "limit", 1000, 1, MAX_PDU_SESSIONS)
    slice_name = request.query.get("slice")
    if slice_name is not None and slice_name not in {
        *(s.name for s in _catalog(request).slices),
        "none",
    }:
        raise BadParameter("slice", f"no slice named {slice_name!r} in the catalog")
    ue = request.query.get("ue")
    supi = request.query.get("supi")
    teid_text = request.query.get("teid")
    teid = None
    if teid_text is not None:
        if not re.fullmatch(TEID_PATTERN, teid_text):
            raise BadParameter("teid", f"teid must be hex with 0x (0x1f), not {teid_text!r}")
        teid = int(teid_text, 16)
    control = request.app[AGENT].control
    docs = control.registry.docs(ended=state != "active") if control is not None else []
    if state == "ended":
        docs = [d for d in docs if d["ended"] is not None]
    selected = [
        d
        for d in docs
        if (source == "any" or d["source"] == source)
        and (slice_name is None or d["slice"] == (None if slice_name == "none" else slice_name))
        and (ue is None or ue in d["ue_addresses"] or d["ue_ip"] == ue)
        and (supi is None or d["supi"] == supi)
        and (teid is None or f"0x{teid:08x}" in d["teids"])
    ]
    return web.json_response(
        {
            "total": len(selected),
            "count": min(len(selected), limit),
            "sessions": selected[:limit],
            "sources": control.status() if control is not None else {},
        }
    )


async def sla(request: web.Request) -> web.Response:
    engine = _engine(request)
    return web.json_response(
        {
            "interval": engine.sla.interval,
            "rule": {
                "window": engine.sla.window,
                "open_bad": engine.sla.open_bad,
                "close_good": engine.sla.close_good,
            },
            "status": {s.name: engine.sla.status(s.name) for s in engine.catalog.slices},
            "events": [violation_doc(v) for v in engine.sla.events],
        }
    )


async def energy(request: web.Request) -> web.Response:
    engine = _engine(request)
    since, until = _float_param(request, "since"), _float_param(request, "until")
    if since is None and until is None:
        latest = engine.history.latest()
        snaps = [] if latest is None else [latest]
    else:
        snaps = _window(request)
    reason = None if engine.energy is not None else engine.energy_off
    return web.json_response(energy_doc(snaps, reason))


async def metrics_route(request: web.Request) -> web.Response:
    text = request.app[AGENT].exposition()
    hub = request.app.get(HUB)
    return web.Response(
        text=text + (hub.exposition() if hub is not None else ""),
        headers={"Content-Type": METRICS_TYPE},
    )


async def openapi_route(request: web.Request) -> web.Response:
    names = tuple(s.name for s in _engine(request).catalog.slices)
    return web.json_response(openapi_document(names))


async def stream_route(request: web.Request) -> web.StreamResponse:
    return await request.app[HUB].serve(request, buckets=_bool_param(request, "buckets"))


async def stream_hub(app: web.Application) -> AsyncIterator[None]:
    """The live stream's hub, hearing the agent's snapshots while the
    application runs."""
    hub = StreamHub(asyncio.get_running_loop())
    app[HUB] = hub
    stop_listening = app[AGENT].listen("stream", hub.on_snapshot)
    yield
    stop_listening()


async def end_streams(app: web.Application) -> None:
    app[HUB].close()


def create_app(agent: AgentView, options: ServiceOptions | None = None) -> web.Application:
    """The service over `agent` (an AgentView: the agent's runtime), which
    it reads only; whoever made the runtime starts and stops it."""
    options = options or ServiceOptions()
    middlewares: list[Middleware] = [problem_middleware]
    if options.rate_per_s > 0:
        middlewares.append(rate_middleware(RateLimiter(options.rate_per_s, options.burst)))
    middlewares.append(access_middleware(options.token))
    app = web.Application(middlewares=middlewares, client_max_size=MAX_REQUEST_BYTES)
    app[AGENT] = agent
    add_dashboard(app)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/api/v1/slices", list_slices)
    app.router.add_get("/api/v1/slices/{name}", get_slice)
    app.router.add_get("/api/v1/slices/{name}/kpis", slice_kpis)
    app.router.add_get("/api/v1/slices/{name}/histograms/{metric}", slice_histogram)
    app.router.add_get("/api/v1/slices/{name}/sessions", slice_sessions)
    app.router.add_get("/api/v1/sessions", pdu_sessions)
    app.router.add_get("/api/v1/histograms/geometry", geometry)
    app.router.add_get("/api/v1/sla", sla)
    app.router.add_get("/api/v1/energy", energy)
    app.router.add_get("/api/v1/stream", stream_route)
    app.router.add_get("/api/v1/openapi.json", openapi_route)
    app.router.add_get("/metrics", metrics_route)
    app.cleanup_ctx.append(stream_hub)
    app.on_shutdown.append(end_streams)
    return app
