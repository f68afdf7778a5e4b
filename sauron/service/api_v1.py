"""The versioned REST routes, an aiohttp sub-application the service mounts
at /api/v1 (sauron.service.app): slices and their KPIs, histograms and
sessions, diagnoses and security, the session table, SLA, energy, the 3GPP
measurements, the live stream, the OpenAPI document. The handlers read the
agent through the view the root application holds (request.config_dict);
the root's middlewares (problem details, rate, token) apply to every route
here."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import partial
from typing import Any, get_args

from aiohttp import web

from sauron.abi import layout
from sauron.abi.histogram import GAP, LATENCY, Histogram
from sauron.abi.kpis import DIRECTIONS, LATENCY_BY_NAME, LATENCY_KPIS, LOSS_BURST
from sauron.catalog import UNCLASSIFIED_NAME, Catalog, Slice
from sauron.control.record import ControlSession
from sauron.host.nearest_word import nearest
from sauron.kpi.engine import KpiEngine
from sauron.kpi.quality import NS_PER_MS
from sauron.kpi.records import Snapshot
from sauron.kpi.sessions import TOP_SESSIONS, SessionVolume
from sauron.security.detect import SecurityEvent
from sauron.service.answers import POINTS, encode, per_interval
from sauron.service.documents import (
    diagnosed_doc,
    energy_doc,
    episode_doc,
    evidence_doc,
    geometry_doc,
    histogram_doc,
    kpi_table_doc,
    pm_doc,
    point_doc,
    session_doc,
    slice_doc,
    unclassified_doc,
    violation_doc,
)
from sauron.service.openapi import TEID_PATTERN
from sauron.service.openapi import document as openapi_document
from sauron.service.parameters import bool_param, choice, float_param, int_param, since_until
from sauron.service.problems import BadParameter, NotFound
from sauron.service.schemas import SessionsBy, SessionSource, SessionState
from sauron.service.security_docs import overlapping, security_report_doc, slice_security_doc
from sauron.service.stream import HUB
from sauron.service.view import AGENT, SecurityLog

PREFIX = "/api/v1"
MAX_PDU_SESSIONS = 10_000
MAX_SERIES_POINTS = 3600
#: metric -> (per direction, unit): every latency KPI, and the loss bursts
HISTOGRAM_METRICS = {
    **{k.name: (k.per_direction, k.unit) for k in LATENCY_KPIS},
    LOSS_BURST: (True, "packets"),
}


def _engine(request: web.Request) -> KpiEngine:
    return request.config_dict[AGENT].engine


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
        near = nearest(name, known)
        guess = f"did you mean {near!r}? " if near else ""
        raise NotFound(f"no slice named {name!r}; {guess}there are {', '.join(known)}")
    return MeasuredSlice(found.name, found.id, found)


def _status(request: web.Request, name: str) -> str:
    return _engine(request).sla.status(name)


def _window(request: web.Request) -> list[Snapshot]:
    """The snapshots between `since` and `until` (both optional)."""
    return _engine(request).history.between(*since_until(request))


def list_slices(request: web.Request) -> dict[str, Any]:
    engine = _engine(request)
    latest = engine.history.latest()
    return {
        "slices": [slice_doc(s, latest, _status(request, s.name)) for s in engine.catalog.slices]
    }


def get_slice(request: web.Request) -> dict[str, Any]:
    s = _slice(request)
    latest, status = _engine(request).history.latest(), _status(request, s.name)
    if s.entry is None:
        return unclassified_doc(latest, status)
    return slice_doc(s.entry, latest, status)


def slice_kpis(request: web.Request) -> bytes:
    """{"slice": name, "points": [point_doc, ...]}, encoded from each
    snapshot's point as encoded once (EncodedPoints)."""
    s = _slice(request)
    snaps = _window(request)
    step = float_param(request, "step", minimum=0)
    buckets = bool_param(request, "buckets")
    chosen = []
    last_t = -math.inf
    for snap in snaps:
        if step and snap.time - last_t < step:
            continue
        last_t = snap.time
        chosen.append(snap)
    points = request.config_dict[POINTS]
    encoded = [
        points.get(snap, s.name, buckets, partial(point_doc, snap, snap.slices[s.name], buckets))
        for snap in chosen[-MAX_SERIES_POINTS:]
    ]
    return b'{"slice":' + encode(s.name) + b',"points":[' + b",".join(encoded) + b"]}"


def kpi_table(request: web.Request) -> dict[str, Any]:
    return kpi_table_doc()


def geometry(request: web.Request) -> dict[str, Any]:
    return {
        "latency": geometry_doc(LATENCY, NS_PER_MS, "ms"),
        "loss_burst": geometry_doc(GAP, 1.0, "packets"),
    }


def slice_histogram(request: web.Request) -> dict[str, Any]:
    s = _slice(request)
    metric = request.match_info["metric"]
    if metric not in HISTOGRAM_METRICS:
        raise NotFound(f"no histogram named {metric!r}; there are {', '.join(HISTOGRAM_METRICS)}")
    per_direction, unit = HISTOGRAM_METRICS[metric]
    direction = choice(request, "direction", DIRECTIONS, None) if per_direction else None
    if not per_direction and "direction" in request.query:
        raise BadParameter("direction", f"{metric} is a round trip: it has no direction")
    if "since" in request.query or "until" in request.query:
        snaps = _window(request)
    else:
        latest = _engine(request).history.latest()
        snaps = [] if latest is None else [latest]
    total = Histogram(GAP if metric == LOSS_BURST else LATENCY_BY_NAME[metric].geometry)
    for snap in snaps:
        k = snap.slices[s.name]
        if metric == LOSS_BURST:
            total.add(getattr(k, str(direction)).loss.bursts())
        else:
            kpis = k.latency_of(metric, str(direction))
            if kpis.samples:
                total.add(kpis.histogram())
    doc = histogram_doc(total, NS_PER_MS if unit == "ms" else 1.0, exact_sum=metric != LOSS_BURST)
    return {
        "slice": s.name,
        "metric": metric,
        "direction": direction,
        "unit": unit,
        "intervals": len(snaps),
        "since": snaps[0].time - snaps[0].interval_s if snaps else None,
        "until": snaps[-1].time if snaps else None,
        **doc,
    }


async def slice_sessions(request: web.Request) -> web.Response:
    s = _slice(request)
    by = choice(request, "by", get_args(SessionsBy), "teid")
    limit = int_param(request, "limit", 10, 1, TOP_SESSIONS)
    engine = _engine(request)
    activity = engine.sessions.teids if by == "teid" else engine.sessions.ues
    latest = engine.history.latest()
    control = request.config_dict[AGENT].control
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
    state = choice(request, "state", get_args(SessionState), "active")
    source = choice(request, "source", get_args(SessionSource), "any")
    limit = int_param(request, "limit", 1000, 1, MAX_PDU_SESSIONS)
    slice_name = request.query.get("slice")
    if slice_name is not None and slice_name not in {
        *(s.name for s in _catalog(request).slices),
        "none",
    }:
        near = nearest(slice_name, (s.name for s in _catalog(request).slices))
        guess = f"; did you mean {near!r}?" if near else ""
        raise BadParameter("slice", f"no slice named {slice_name!r} in the catalog{guess}")
    ue = request.query.get("ue")
    supi = request.query.get("supi")
    teid_text = request.query.get("teid")
    teid = None
    if teid_text is not None:
        if not re.fullmatch(TEID_PATTERN, teid_text):
            raise BadParameter("teid", f"teid must be hex with 0x (0x1f), not {teid_text!r}")
        teid = int(teid_text, 16)
    control = request.config_dict[AGENT].control
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


def sla(request: web.Request) -> dict[str, Any]:
    engine = _engine(request)
    return {
        "interval": engine.sla.interval,
        "rule": {
            "window": engine.sla.window,
            "open_bad": engine.sla.open_bad,
            "close_good": engine.sla.close_good,
        },
        "status": {s.name: engine.sla.status(s.name) for s in engine.catalog.slices},
        "events": [violation_doc(v) for v in engine.sla.events],
    }


def _latest_or_window(request: web.Request) -> list[Snapshot]:
    """The snapshots between `since` and `until`, or the latest one when
    neither is given."""
    engine = _engine(request)
    since, until = since_until(request)
    if since is None and until is None:
        latest = engine.history.latest()
        return [] if latest is None else [latest]
    return engine.history.between(since, until)


def energy(request: web.Request) -> dict[str, Any]:
    engine = _engine(request)
    reason = None if engine.energy is not None else engine.energy_off
    return energy_doc(_latest_or_window(request), reason)


def pm(request: web.Request) -> dict[str, Any]:
    """The 3GPP performance-measurement view (TS 28.552, TS 28.554)."""
    engine = _engine(request)
    return pm_doc(_latest_or_window(request), engine.catalog.slices, engine.energy is not None)


async def slice_diagnosis(request: web.Request) -> web.Response:
    """Why the slice is late or lossy: its latest diagnoses, newest first.
    Built on each request: the probe's state moves between ticks."""
    s = _slice(request)
    limit = int_param(request, "limit", 10, 1, 1000)
    log = request.config_dict[AGENT].diagnosing
    if log is None:
        return web.json_response(
            {"slice": s.name, "enabled": False, "probe": None, "episode": None, "diagnoses": []}
        )
    return web.json_response(
        {
            "slice": s.name,
            "enabled": True,
            "probe": {
                "available": log.probe_available,
                "attached": log.probe_attached,
                "missing": log.probe_missing,
            },
            "episode": episode_doc(log.episode(s.name)),
            "diagnoses": [diagnosed_doc(d) for d in reversed(log.history(s.name)[-limit:])],
            "evidence": evidence_doc(log.evidence_files(s.name), log.evidence_missing),
        }
    )


# The security routes are built on each request, not kept per interval: the
# detections come from a listener of the snapshot, which runs after the
# engine's generation moved, so an answer kept at that generation could miss
# the interval's detections until the next tick.


def _security_window(
    request: web.Request, slice_id: int | None = None
) -> tuple[list[Snapshot], list[SecurityEvent], SecurityLog | None]:
    """The snapshots of the window asked for, the detections overlapping it
    (of the slice, when one is named), and the checks' log (None: off)."""
    since, until = since_until(request)
    log = request.config_dict[AGENT].security
    events = overlapping([] if log is None else log.events(), since, until)
    if slice_id is not None:
        events = [e for e in events if e.slice_id == slice_id]
    return _engine(request).history.between(since, until), events, log


async def security(request: web.Request) -> web.Response:
    """Every slice's failed security checks over the window, and the
    detections overlapping it."""
    snaps, events, log = _security_window(request)
    return web.json_response(security_report_doc(snaps, events, log, _catalog(request)))


async def slice_security(request: web.Request) -> web.Response:
    """One slice's failed security checks over the window, and its detections."""
    s = _slice(request)
    snaps, events, log = _security_window(request, s.id)
    return web.json_response(slice_security_doc(s.name, snaps, events, log, _catalog(request)))


def openapi_route(request: web.Request) -> dict[str, Any]:
    names = tuple(s.name for s in _catalog(request).slices)
    return openapi_document(names)


async def stream_route(request: web.Request) -> web.StreamResponse:
    return await request.config_dict[HUB].serve(request, buckets=bool_param(request, "buckets"))


#: the routes whose answers are built once per interval and query
cached = per_interval(_engine, lambda request: request.config_dict[AGENT].interval_s)


def api_v1() -> web.Application:
    """The sub-application of the versioned routes, paths relative to
    PREFIX; no middleware of its own (the root's apply)."""
    v1 = web.Application()
    v1.router.add_get("/slices", cached(list_slices))
    v1.router.add_get("/slices/{name}", cached(get_slice))
    v1.router.add_get("/slices/{name}/kpis", cached(slice_kpis))
    v1.router.add_get("/slices/{name}/histograms/{metric}", cached(slice_histogram))
    v1.router.add_get("/slices/{name}/sessions", slice_sessions)
    v1.router.add_get("/slices/{name}/diagnosis", slice_diagnosis)
    v1.router.add_get("/slices/{name}/security", slice_security)
    v1.router.add_get("/security", security)
    v1.router.add_get("/sessions", pdu_sessions)
    v1.router.add_get("/kpis", cached(kpi_table))
    v1.router.add_get("/histograms/geometry", cached(geometry))
    v1.router.add_get("/sla", cached(sla))
    v1.router.add_get("/energy", cached(energy))
    v1.router.add_get("/pm", cached(pm))
    v1.router.add_get("/stream", stream_route)
    v1.router.add_get("/openapi.json", cached(openapi_route))
    return v1
