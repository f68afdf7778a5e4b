"""The OpenAPI 3.0 document of the agent's API. Response schemas come from
the pydantic models in schemas.py; a test checks the document lists exactly
the routes the application serves, and property-based tests check every
response against it."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from sauron import __version__
from sauron.abi.kpis import DIRECTION_LATENCY, LOSS_BURST, SLICE_LATENCY
from sauron.catalog import UNCLASSIFIED_NAME
from sauron.kpi.sessions import TOP_SESSIONS
from sauron.service import schemas

REF = "#/components/schemas/{model}"
TEID_PATTERN = "^0x[0-9a-fA-F]{1,8}$"


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _json(model: type[BaseModel], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


PROBLEM = {
    "description": "problem details (RFC 9457)",
    "content": {"application/problem+json": {"schema": _ref(schemas.Problem)}},
}
#: what the guards add to every route they cover
GUARDED = {"401": PROBLEM, "429": PROBLEM}
#: the per-session routes: 403 over TCP when the agent has no token
PER_UE = {**GUARDED, "403": PROBLEM}
#: the routes whose answers are built once per interval (sauron.service.answers)
KEPT_PER_INTERVAL = (
    "/metrics",
    "/api/v1/openapi.json",
    "/api/v1/slices",
    "/api/v1/slices/{name}",
    "/api/v1/slices/{name}/kpis",
    "/api/v1/slices/{name}/histograms/{metric}",
    "/api/v1/kpis",
    "/api/v1/histograms/geometry",
    "/api/v1/sla",
    "/api/v1/energy",
    "/api/v1/pm",
)
_STRING = {"schema": {"type": "string"}}
KEPT_HEADERS = {
    "ETag": {"description": "a hash of the body; changes when a tick changes it", **_STRING},
    "Cache-Control": {"description": "max-age: whole seconds to the next tick", **_STRING},
}
NOT_MODIFIED = {
    "description": "not modified: If-None-Match holds the answer's ETag (no body)",
    "headers": KEPT_HEADERS,
}


def _kept(paths: dict[str, Any]) -> dict[str, Any]:
    """The cache headers and the 304 on the routes that keep their answers."""
    for path in KEPT_PER_INTERVAL:
        responses = paths[path]["get"]["responses"]
        responses["200"] = {**responses["200"], "headers": KEPT_HEADERS}
        responses["304"] = NOT_MODIFIED
    return paths


def _name(slice_names: tuple[str, ...]) -> dict[str, Any]:
    param: dict[str, Any] = {
        "name": "name",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": (
            f"a slice name from the catalog, or {UNCLASSIFIED_NAME}: the traffic no catalog "
            "slice claims (its KPIs, no S-NSSAI and no SLA)"
        ),
    }
    if slice_names:
        names = (*slice_names, UNCLASSIFIED_NAME)
        param["examples"] = {n: {"value": n} for n in names}
    return param


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


WINDOW = [
    _query("since", {"type": "number"}, "unix seconds, inclusive"),
    _query("until", {"type": "number"}, "unix seconds, inclusive"),
]


BUCKETS = _query(
    "buckets",
    {"type": "string", "enum": ["true", "false"]},
    "true: each latency also carries its raw bucket counts by index "
    "(/api/v1/histograms/geometry gives their bounds); default false",
)


def _nullable(node: Any) -> Any:
    """JSON Schema's `anyOf [X, {type: null}]` as OpenAPI 3.0's nullable X."""
    if isinstance(node, list):
        return [_nullable(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _nullable(v) for k, v in node.items()}
    options = node.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        del node["anyOf"]
        if len(rest) == 1 and "$ref" not in rest[0]:
            node.update(rest[0])
        else:
            node["allOf" if len(rest) == 1 else "anyOf"] = rest
        node["nullable"] = True
        if "enum" in node:
            node["enum"] = [*node["enum"], None]  # 3.0.3: null must be listed too
    return node


def _components() -> dict[str, Any]:
    _, top = models_json_schema(
        [(m, "serialization") for m in schemas.COMPONENTS], ref_template=REF
    )
    result: dict[str, Any] = _nullable(top["$defs"])
    return result


def _get(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"get": {"summary": summary, "responses": responses, **extra}}


@cache
def document(slice_names: tuple[str, ...] = ()) -> dict[str, Any]:
    """The document; with the catalog's slice names as examples."""
    name_param = _name(slice_names)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Sauron agent API",
            "version": __version__,
            "description": (
                "Per-slice KPIs of a 5G user plane, measured in the kernel. When the agent "
                "has a token, every route but /healthz and /readyz needs "
                "`Authorization: Bearer <token>`. The per-session routes (UE addresses, "
                "TEIDs, SUPIs) need the token, or the agent's UNIX socket: without a "
                "token they answer 403 over TCP."
            ),
        },
        "components": {
            "schemas": _components(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}, {}],
        "paths": _kept(
            {
                "/": _get(
                    "the slice SLA dashboard (HTML; it asks for the token when the agent has one)",
                    {
                        "200": {
                            "description": "the page",
                            "content": {"text/html": {"schema": {"type": "string"}}},
                        },
                        "503": PROBLEM,
                        "429": PROBLEM,
                    },
                    security=[],
                ),
                "/static/{filename}": _get(
                    "the dashboard's scripts and styles",
                    {
                        "200": {"description": "the file", "content": {"*/*": {"schema": {}}}},
                        "403": PROBLEM,
                        "404": PROBLEM,
                        "429": PROBLEM,
                    },
                    security=[],
                    parameters=[
                        {
                            "name": "filename",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                            "examples": {"script": {"value": "dashboard.js"}},
                        }
                    ],
                ),
                "/healthz": _get(
                    "the process is alive", {"200": _json(schemas.Health)}, security=[]
                ),
                "/readyz": _get(
                    "a first interval has been measured",
                    {
                        "200": _json(schemas.Health),
                        "503": _json(
                            schemas.Health, "not yet, or the InfluxDB server refuses the writes"
                        ),
                    },
                    security=[],
                ),
                "/metrics": _get(
                    "Prometheus text exposition",
                    {
                        "200": {
                            "description": "OK",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        **GUARDED,
                    },
                ),
                "/api/v1/openapi.json": _get(
                    "this document",
                    {
                        "200": {
                            "description": "OK",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        **GUARDED,
                    },
                ),
                "/api/v1/slices": _get(
                    "catalog, SLA status and latest KPIs of every catalog slice "
                    f"({UNCLASSIFIED_NAME} is not listed: ask /api/v1/slices/{UNCLASSIFIED_NAME})",
                    {"200": _json(schemas.SliceList), **GUARDED},
                ),
                "/api/v1/slices/{name}": _get(
                    f"one slice, or {UNCLASSIFIED_NAME} (snssai null, no SLA targets, unmeasured)",
                    {"200": _json(schemas.SliceDoc), "404": PROBLEM, **GUARDED},
                    parameters=[name_param],
                ),
                "/api/v1/slices/{name}/kpis": _get(
                    "KPI time series of one slice (full resolution recently, averaged further back)",
                    {"200": _json(schemas.KpiSeries), "400": PROBLEM, "404": PROBLEM, **GUARDED},
                    parameters=[
                        name_param,
                        *WINDOW,
                        _query("step", {"type": "number", "minimum": 0}, "seconds between points"),
                        BUCKETS,
                    ],
                ),
                "/api/v1/slices/{name}/histograms/{metric}": _get(
                    "bucket counts and percentiles of one metric, merged over a window "
                    "(default: the latest interval)",
                    {"200": _json(schemas.HistogramDoc), "400": PROBLEM, "404": PROBLEM, **GUARDED},
                    parameters=[
                        name_param,
                        {
                            "name": "metric",
                            "in": "path",
                            "required": True,
                            "schema": {
                                "type": "string",
                                "enum": list(schemas.HISTOGRAMS),
                            },
                        },
                        _query(
                            "direction",
                            {"type": "string", "enum": ["uplink", "downlink"]},
                            "required for "
                            + " and ".join((*(k.name for k in DIRECTION_LATENCY), LOSS_BURST))
                            + ", refused for "
                            + " and ".join(k.name for k in SLICE_LATENCY),
                        ),
                        *WINDOW,
                    ],
                ),
                "/api/v1/slices/{name}/sessions": _get(
                    "the TEIDs or UE addresses that carried the most bytes in the latest interval",
                    {"200": _json(schemas.Sessions), "400": PROBLEM, "404": PROBLEM, **PER_UE},
                    parameters=[
                        name_param,
                        _query("by", {"type": "string", "enum": ["teid", "ue"]}, "default teid"),
                        _query(
                            "limit",
                            {"type": "integer", "minimum": 1, "maximum": TOP_SESSIONS},
                            "default 10",
                        ),
                    ],
                ),
                "/api/v1/slices/{name}/diagnosis": _get(
                    "why the slice is late or lossy: the factors of each failing latency or "
                    "loss target per degraded interval, newest first, measured by a kernel "
                    "probe attached only while a slice is degraded",
                    {
                        "200": _json(schemas.DiagnosisReport),
                        "400": PROBLEM,
                        "404": PROBLEM,
                        **GUARDED,
                    },
                    parameters=[
                        name_param,
                        _query(
                            "limit",
                            {"type": "integer", "minimum": 1, "maximum": 1000},
                            "default 10",
                        ),
                    ],
                ),
                "/api/v1/slices/{name}/security": _get(
                    "the slice's uplink G-PDUs that failed each security check, summed over a "
                    "window (default: every interval the agent keeps) with their rate, and its "
                    "detections (TEID scans, spoofing UEs) overlapping the window; built on "
                    "each request",
                    {
                        "200": _json(schemas.SliceSecurityReport),
                        "400": PROBLEM,
                        "404": PROBLEM,
                        **GUARDED,
                    },
                    parameters=[name_param, *WINDOW],
                ),
                "/api/v1/security": _get(
                    "every slice's uplink G-PDUs that failed each security check, summed over "
                    "a window (default: every interval the agent keeps) with their rate, the "
                    "detections overlapping the window, and what the checks run with; built "
                    "on each request",
                    {"200": _json(schemas.SecurityReport), "400": PROBLEM, **GUARDED},
                    parameters=[*WINDOW],
                ),
                "/api/v1/sessions": _get(
                    "PDU sessions learned from PFCP (N4) or an SMF's session list, with their "
                    "slice and the rule that chose it, and how the sources fare",
                    {"200": _json(schemas.PduSessions), "400": PROBLEM, **PER_UE},
                    parameters=[
                        _query(
                            "state",
                            {"type": "string", "enum": ["active", "ended", "all"]},
                            "default active; ended: the most recent ones that ended",
                        ),
                        _query(
                            "source",
                            {"type": "string", "enum": ["pfcp", "smf", "any"]},
                            "default any",
                        ),
                        _query(
                            "slice",
                            {"type": "string", "enum": [*slice_names, "none"]}
                            if slice_names
                            else {"type": "string"},
                            "a catalog slice name, or none: sessions no slice claims",
                        ),
                        _query("ue", {"type": "string"}, "a UE address"),
                        _query("supi", {"type": "string"}, "e.g. imsi-001010000000001"),
                        _query(
                            "teid",
                            {"type": "string", "pattern": TEID_PATTERN},
                            "a TEID of either end, in hex (0x1f)",
                        ),
                        _query(
                            "limit",
                            {"type": "integer", "minimum": 1, "maximum": 10000},
                            "default 1000",
                        ),
                    ],
                ),
                "/api/v1/kpis": _get(
                    "the KPIs this agent measures: names, units, directions, Prometheus "
                    "families, SLA target keys",
                    {"200": _json(schemas.KpiTable), **GUARDED},
                ),
                "/api/v1/histograms/geometry": _get(
                    "the bounds of every histogram bucket, by index",
                    {"200": _json(schemas.Geometries), **GUARDED},
                ),
                "/api/v1/sla": _get(
                    "SLA status per slice and violation events",
                    {"200": _json(schemas.SlaReport), **GUARDED},
                ),
                "/api/v1/energy": _get(
                    "energy per slice and of the node, summed over a window (default: the "
                    "latest interval), with the power model and cycle source behind it",
                    {"200": _json(schemas.EnergyReport), "400": PROBLEM, **GUARDED},
                    parameters=[*WINDOW],
                ),
                "/api/v1/pm": _get(
                    "3GPP performance measurements per S-NSSAI over a granularity period "
                    "(default: the latest interval): TS 28.552 GTP-U data packets and octets "
                    "on N3, TS 28.554 energy efficiency by each energy attribution method",
                    {"200": _json(schemas.PmReport), "400": PROBLEM, **GUARDED},
                    parameters=[*WINDOW],
                ),
                "/api/v1/stream": _get(
                    "each new snapshot as a server-sent event `snapshot` (data: SnapshotDoc)",
                    {
                        "200": {
                            "description": "event stream",
                            "content": {"text/event-stream": {"schema": {"type": "string"}}},
                        },
                        "400": PROBLEM,
                        "503": PROBLEM,
                        **GUARDED,
                    },
                    parameters=[BUCKETS],
                ),
            }
        ),
    }
