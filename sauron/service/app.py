"""The aiohttp application, built by create_app() over a view of the agent's
runtime (sauron.service.view): the versioned REST routes as a sub-application
at /api/v1 (sauron.service.api_v1), the health probes, the exposition and the
dashboard at the root. It reads the agent and never runs it: the runtime
ticks the engine, starts and stops the exporters and the control plane
(sauron.agent.runtime). The root's middlewares (problem details, rate,
token) apply to the sub-application's routes too."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware

from sauron.export.prometheus import CONTENT_TYPE as METRICS_TYPE
from sauron.service.answers import (
    ANSWERS,
    POINTS,
    Answers,
    ContentAnswers,
    EncodedPoints,
    respond,
)
from sauron.service.api_v1 import PREFIX, api_v1
from sauron.service.dashboard.routes import add_dashboard
from sauron.service.guard import RateLimiter, access_middleware, rate_middleware
from sauron.service.problems import problem_middleware
from sauron.service.stream import HUB, StreamHub
from sauron.service.view import AGENT, AgentView

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
    if agent.data_path is not None:
        body["data_path"] = agent.data_path
    for health in agent.exporter_health():
        if health.detail is not None:
            body[health.name] = health.detail
        if not health.ok:
            reasons.append(health.problem)
    status = "; ".join(reasons) or "ready"
    return web.json_response({"status": status, **body}, status=503 if reasons else 200)


#: /metrics by its content: its exporter and stream families move between ticks
METRICS = web.AppKey("metrics", ContentAnswers)


async def metrics_route(request: web.Request) -> web.Response:
    agent = request.app[AGENT]
    hub = request.app.get(HUB)
    parts = (*agent.exposition(), hub.exposition() if hub is not None else "")
    answer = request.app[METRICS].get(parts, METRICS_TYPE)
    # its exporter families may move before the next tick: revalidate each time
    return respond(request, answer, 0)


metrics_route.kept_per_interval = True  # type: ignore[attr-defined]


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
    app[ANSWERS] = Answers()
    app[POINTS] = EncodedPoints()
    app[METRICS] = ContentAnswers()
    add_dashboard(app)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_route)
    app.add_subapp(PREFIX, api_v1())
    app.cleanup_ctx.append(stream_hub)
    app.on_shutdown.append(end_streams)
    return app
