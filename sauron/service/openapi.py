"""The OpenAPI document of the agent's API. A test checks it lists exactly
the routes the application serves."""

from __future__ import annotations

from typing import Any

from sauron import __version__

PROBLEM = {
    "description": "problem details (RFC 9457)",
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}
JSON_OK = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
NAME = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "slice name from the catalog",
}


def _number(name: str, description: str, minimum: float | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "number"}
    if minimum is not None:
        schema["minimum"] = minimum
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Sauron agent API",
            "version": __version__,
            "description": "Per-slice KPIs of a 5G user plane, measured in the kernel.",
        },
        "paths": {
            "/healthz": {"get": {"summary": "the process is alive", "responses": {"200": JSON_OK}}},
            "/readyz": {
                "get": {
                    "summary": "a first interval has been measured",
                    "responses": {"200": JSON_OK, "503": JSON_OK},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus text exposition",
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/api/v1/openapi.json": {
                "get": {"summary": "this document", "responses": {"200": JSON_OK}}
            },
            "/api/v1/slices": {
                "get": {
                    "summary": "catalog, status and latest KPIs of every slice",
                    "responses": {"200": JSON_OK},
                }
            },
            "/api/v1/slices/{name}": {
                "get": {
                    "summary": "one slice",
                    "parameters": [NAME],
                    "responses": {"200": JSON_OK, "404": PROBLEM},
                }
            },
            "/api/v1/slices/{name}/kpis": {
                "get": {
                    "summary": "KPI time series of one slice",
                    "parameters": [
                        NAME,
                        _number("since", "unix seconds, inclusive"),
                        _number("until", "unix seconds, inclusive"),
                        _number("step", "seconds between points at least", minimum=0),
                    ],
                    "responses": {"200": JSON_OK, "400": PROBLEM, "404": PROBLEM},
                }
            },
            "/api/v1/sla": {
                "get": {
                    "summary": "SLA status per slice and violation events",
                    "responses": {"200": JSON_OK},
                }
            },
            "/api/v1/stream": {
                "get": {
                    "summary": "each new snapshot, as server-sent events",
                    "responses": {
                        "200": {
                            "description": "event stream",
                            "content": {"text/event-stream": {"schema": {"type": "string"}}},
                        },
                        "503": PROBLEM,
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Problem": {
                    "type": "object",
                    "required": ["title", "status", "detail"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "param": {"type": "string"},
                    },
                }
            }
        },
    }
