"""The parts of a Grafana dashboard both generators write (make_dashboards.py
on InfluxDB, make_prometheus_dashboard.py on Prometheus): a panel, a query
variable and the dashboard around them. Each generator writes its own
queries; the JSON model they sit in is written here once."""

from __future__ import annotations

import json
from typing import Any

DataSource = dict[str, str]


def panel(
    datasource: DataSource,
    title: str,
    kind: str,
    targets: list[dict[str, Any]],
    x: int,
    y: int,
    w: int = 8,
    h: int = 8,
    unit: str = "none",
    description: str = "",
    **extra: Any,
) -> dict[str, Any]:
    """A panel; each target gets its refId (A, B, ...) and the data source."""
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": datasource,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": datasource, **t}
            for i, t in enumerate(targets)
        ],
        **extra,
    }


def variable(
    datasource: DataSource, name: str, label: str, query: Any, definition: str
) -> dict[str, Any]:
    """A multi-valued variable whose values a query lists, "All" chosen."""
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": datasource,
        "query": query,
        "definition": definition,
        "refresh": 2,
        "multi": True,
        "includeAll": True,
        "current": {"text": "All", "value": "$__all"},
        "sort": 1,
    }


def dashboard(
    uid: str,
    title: str,
    description: str,
    tags: list[str],
    variables: list[dict[str, Any]],
    panels: list[dict[str, Any]],
) -> dict[str, Any]:
    """The dashboard: read-only, the last 30 minutes, refreshed every 10 s."""
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": tags,
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "10s",
        "time": {"from": "now-30m", "to": "now"},
        "templating": {"list": variables},
        "panels": panels,
    }


def render(model: dict[str, Any]) -> str:
    """The file's text: stable key order, so a regenerated file diffs clean."""
    return json.dumps(model, indent=2, sort_keys=True) + "\n"
