"""The live stream's wire format (server-sent events), written by the
service and read by clients: kept apart from the server so a client imports
nothing of the agent."""

from __future__ import annotations

import json
from typing import Any

SNAPSHOT = "snapshot"


def snapshot_event(data: str) -> bytes:
    """One event carrying a snapshot document (JSON text, one line)."""
    return f"event: {SNAPSHOT}\ndata: {data}\n\n".encode()


def parse_events(text: str) -> list[dict[str, Any]]:
    """The snapshots in whole events of event-stream text."""
    out = []
    for block in text.split("\n\n"):
        lines = block.splitlines()
        if f"event: {SNAPSHOT}" in lines:
            out.append(json.loads("".join(line[6:] for line in lines if line.startswith("data: "))))
    return out
