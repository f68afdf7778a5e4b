"""The live stream: each new snapshot to every subscriber as a server-sent
event. Every client has a small queue of its own; a slow client loses its
oldest events (counted and told), never stalls the others or the engine.
A client may ask for the latency histograms' raw buckets (`buckets=true`,
what the dashboard's heatmaps draw); each snapshot is encoded once per form
asked for.

Slots are bounded and shared so that a dashboard always gets one: at most
MAX_PER_ADDRESS streams per client address and MAX_CLIENTS in all. A
newcomer is never turned away: when its address holds its share, that
address's stream furthest behind (events waiting, bytes unsent, then the
oldest) makes room; when every slot is taken, the address holding the most
gives one up the same way. A client that does not read is ended once a
write to it waits WRITE_TIMEOUT_S. Evictions are counted by reason."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web

from sauron.kpi.records import Snapshot
from sauron.service.answers import encode
from sauron.service.documents import snapshot_doc
from sauron.service.events import snapshot_event

QUEUE_PER_CLIENT = 8
MAX_CLIENTS = 100
MAX_PER_ADDRESS = 8
#: a write to a client that waits this long ends the client
WRITE_TIMEOUT_S = 10.0
#: bytes a stream holds unsent before writing waits: a client that stops
#: reading reaches the write timeout after little memory, not megabytes
SEND_BUFFER = 64 * 1024
EVICT_REASONS = ("address_share", "slots_full", "write_timeout")


@dataclass(eq=False)
class StreamClient:
    buckets: bool
    address: str
    #: loop time it joined
    since: float
    queue: asyncio.Queue[bytes | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_PER_CLIENT)
    )
    transport: asyncio.Transport | None = None

    def behind(self) -> tuple[int, int, float]:
        """How far behind: events waiting, bytes unsent, then age (the
        larger, the sooner evicted)."""
        unsent = self.transport.get_write_buffer_size() if self.transport is not None else 0
        return self.queue.qsize(), unsent, -self.since


class StreamHub:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        #: each client's queue and what it asked for
        self.clients: dict[asyncio.Queue[bytes | None], StreamClient] = {}
        self.bucket_clients = 0
        self.dropped = 0
        self.evicted: Counter[str] = Counter()

    def exposition(self) -> str:
        """The stream's families in the Prometheus text format, for /metrics."""
        lines = [
            "# HELP sauron_stream_clients Clients of the live stream.",
            "# TYPE sauron_stream_clients gauge",
            f"sauron_stream_clients {len(self.clients)}",
            "# HELP sauron_stream_events_dropped_total "
            "Events a slow stream client lost (its oldest first).",
            "# TYPE sauron_stream_events_dropped_total counter",
            f"sauron_stream_events_dropped_total {self.dropped}",
            "# HELP sauron_stream_evicted_total "
            "Stream clients ended to make room or because they stopped reading, by reason.",
            "# TYPE sauron_stream_evicted_total counter",
        ]
        lines += [
            f'sauron_stream_evicted_total{{reason="{reason}"}} {self.evicted[reason]}'
            for reason in EVICT_REASONS
        ]
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        """Ends every stream (None tells a client's handler to return), so
        a shutdown need not wait for clients that may never read again."""
        for queue in self.clients:
            _end(queue)

    def on_snapshot(self, snap: Snapshot) -> None:
        """Engine listener; called from the engine's thread."""
        # the clients' dict belongs to the loop's thread: only counts are read here
        if not self.clients:
            return  # a client joining now waits for the next snapshot
        forms = (False, True) if self.bucket_clients else (False,)
        # one event per form, the same bytes for every client
        encoded = {b: snapshot_event(encode(snapshot_doc(snap, buckets=b))) for b in forms}
        self.loop.call_soon_threadsafe(self._publish, encoded)

    def _publish(self, encoded: dict[bool, bytes]) -> None:
        for queue, client in self.clients.items():
            data = encoded.get(client.buckets)
            if data is None:  # joined after the snapshot was encoded
                continue
            if queue.full():
                queue.get_nowait()
                self.dropped += 1
            queue.put_nowait(data)

    def _leave(self, client: StreamClient) -> None:
        if self.clients.pop(client.queue, None) is not None:
            self.bucket_clients -= client.buckets

    def _evict(self, client: StreamClient, reason: str) -> None:
        self._leave(client)
        self.evicted[reason] += 1
        _end(client.queue)
        if client.transport is not None:
            client.transport.abort()  # a write waiting on it ends now

    def _make_room(self, address: str) -> None:
        mine = [c for c in self.clients.values() if c.address == address]
        if len(mine) >= MAX_PER_ADDRESS:
            self._evict(max(mine, key=StreamClient.behind), "address_share")
            return
        if len(self.clients) < MAX_CLIENTS:
            return
        per_address = Counter(c.address for c in self.clients.values())
        biggest = max(per_address, key=lambda a: per_address[a])
        holders = [c for c in self.clients.values() if c.address == biggest]
        self._evict(max(holders, key=StreamClient.behind), "slots_full")

    async def serve(self, request: web.Request, buckets: bool = False) -> web.StreamResponse:
        address = request.remote or "unknown"
        self._make_room(address)
        client = StreamClient(buckets, address, self.loop.time(), transport=request.transport)
        self.clients[client.queue] = client
        self.bucket_clients += buckets
        _small_send_buffer(request.transport)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        try:
            await asyncio.wait_for(response.prepare(request), WRITE_TIMEOUT_S)
            await asyncio.wait_for(response.write(b"retry: 2000\n\n"), WRITE_TIMEOUT_S)
            while (data := await client.queue.get()) is not None:
                await asyncio.wait_for(response.write(data), WRITE_TIMEOUT_S)
        except TimeoutError:
            self._evict(client, "write_timeout")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._leave(client)
        return response


#: where the application keeps its hub (sauron.service.app)
HUB = web.AppKey("hub", StreamHub)


def _end(queue: asyncio.Queue[bytes | None]) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(None)


def _small_send_buffer(transport: asyncio.Transport | None) -> None:
    if transport is None:
        return
    transport.set_write_buffer_limits(high=SEND_BUFFER)
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
