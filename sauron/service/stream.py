"""The live stream: each new snapshot to every subscriber as a server-sent
event. Every client has a small queue of its own; a slow client loses its
oldest events (counted and told), never stalls the others or the engine.
A client may ask for the latency histograms' raw buckets (`buckets=true`,
what the dashboard's heatmaps draw); each snapshot is encoded once per form
asked for."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from sauron.engine import Snapshot
from sauron.service.documents import snapshot_doc
from sauron.service.events import snapshot_event

QUEUE_PER_CLIENT = 8
MAX_CLIENTS = 100


class StreamHub:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        #: each client's queue, and whether it asked for the buckets
        self.clients: dict[asyncio.Queue[str | None], bool] = {}
        self.bucket_clients = 0
        self.dropped = 0

    def close(self) -> None:
        """Ends every stream (None tells a client's handler to return), so
        a shutdown need not wait for clients that may never read again."""
        for queue in self.clients:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(None)

    def on_snapshot(self, snap: Snapshot) -> None:
        """Engine listener; called from the engine's thread."""
        # the clients' dict belongs to the loop's thread: only a count is read here
        forms = (False, True) if self.bucket_clients else (False,)
        encoded = {b: json.dumps(snapshot_doc(snap, buckets=b)) for b in forms}
        self.loop.call_soon_threadsafe(self._publish, encoded)

    def _publish(self, encoded: dict[bool, str]) -> None:
        for queue, buckets in self.clients.items():
            data = encoded.get(buckets)
            if data is None:  # joined after the snapshot was encoded
                continue
            if queue.full():
                queue.get_nowait()
                self.dropped += 1
            queue.put_nowait(data)

    async def serve(self, request: web.Request, buckets: bool = False) -> web.StreamResponse:
        if len(self.clients) >= MAX_CLIENTS:
            raise web.HTTPServiceUnavailable(text="too many stream clients")
        queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=QUEUE_PER_CLIENT)
        self.clients[queue] = buckets
        self.bucket_clients += buckets
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        try:
            await response.prepare(request)
            await response.write(b"retry: 2000\n\n")
            while (data := await queue.get()) is not None:
                await response.write(snapshot_event(data))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.bucket_clients -= self.clients.pop(queue, False)
        return response
