"""The live stream's wire format (server-sent events), written by the
service and read by clients: kept apart from the server so a client imports
nothing of the agent.

The reader follows the event-stream format of the HTML standard (section
9.2, "Server-sent events"), not only what Sauron's own server writes: lines
end in CRLF, LF or CR; a line starting with ":" is a comment (a keep-alive
ping); "field: value" with one leading space dropped; several `data` lines
join with LF; `id` and `retry` are kept for a reconnection; an event is
dispatched at a blank line, and one without data is none."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

SNAPSHOT = "snapshot"


def snapshot_event(data: bytes) -> bytes:
    """One event carrying a snapshot document (JSON, one line)."""
    return b"event: " + SNAPSHOT.encode() + b"\ndata: " + data + b"\n\n"


@dataclass(frozen=True)
class Event:
    type: str
    data: str
    #: the last event id the stream set (sent back as Last-Event-ID)
    last_id: str


class EventStreamReader:
    """Feed it the stream's text as it arrives, in pieces of any size;
    each feed returns the events completed."""

    def __init__(self) -> None:
        self._pending = ""
        self._type = ""
        self._data: list[str] = []
        self.last_id = ""
        #: the reconnection time the server asked for, in milliseconds
        self.retry_ms: int | None = None

    def restart(self) -> None:
        """A new connection: what was half received is dropped; the last
        event id and the retry time are kept."""
        self._pending, self._type, self._data = "", "", []

    def feed(self, text: str) -> list[Event]:
        self._pending += text
        events: list[Event] = []
        while True:
            ends = [i for i in (self._pending.find("\r"), self._pending.find("\n")) if i >= 0]
            if not ends:
                return events
            cut = min(ends)
            if self._pending[cut] == "\r" and cut + 1 == len(self._pending):
                return events  # a CR at the end may be the first half of a CRLF
            line = self._pending[:cut]
            step = 2 if self._pending.startswith("\r\n", cut) else 1
            self._pending = self._pending[cut + step :]
            event = self._line(line)
            if event is not None:
                events.append(event)

    def _line(self, line: str) -> Event | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "event":
            self._type = value
        elif field == "data":
            self._data.append(value)
        elif field == "id" and "\0" not in value:
            self.last_id = value
        elif field == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> Event | None:
        kind, data = self._type or "message", self._data
        self._type, self._data = "", []
        if not data:
            return None
        return Event(kind, "\n".join(data), self.last_id)


def parse_events(text: str) -> list[dict[str, Any]]:
    """The snapshots in whole events of event-stream text."""
    reader = EventStreamReader()
    return [json.loads(e.data) for e in reader.feed(text) if e.type == SNAPSHOT]
