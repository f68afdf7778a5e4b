"""The client's stream against a second server-sent events implementation
(aiohttp-sse: CRLF line ends, keep-alive comments, ids, retry): every
snapshot read, and a stream the server closes is opened again with the
last event id, as the standard has a browser do. Real servers on
loopback; neither root nor the kernel is needed."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web
from aiohttp_sse import sse_response
from served import serve_in_thread

from sauron.commands.client import ApiError, SauronClient


def snapshot(n: int) -> str:
    return json.dumps({"time": 1000.0 + n, "interval_s": 1.0, "slices": {}, "energy": None})


def test_the_stream_reads_another_server_and_reconnects() -> None:
    asked_with: list[str | None] = []

    async def stream(request: web.Request) -> web.StreamResponse:
        asked_with.append(request.headers.get("Last-Event-ID"))
        first = 1 if len(asked_with) == 1 else 3
        async with sse_response(request) as response:
            await response.send("", event="ignored-by-the-client")  # an event of another type
            for n in (first, first + 1):
                await response.send(snapshot(n), event="snapshot", id=str(n), retry=50)
            # a keep-alive comment, as aiohttp-sse pings
            await response.write(b": ping\r\n\r\n")
        return response  # closed: the client must come back

    app = web.Application()
    app.router.add_get("/api/v1/stream", stream)

    async def read(url: str) -> list[float]:
        times: list[float] = []
        async with SauronClient(url) as api:
            async for doc in api.stream(reconnect=True):
                times.append(doc.time)
                if len(times) == 4:
                    break
        return times

    with serve_in_thread(app) as url:
        times = asyncio.run(asyncio.wait_for(read(url), 20))
    assert times == [1001.0, 1002.0, 1003.0, 1004.0]
    assert asked_with == [None, "2"]


def test_without_reconnect_the_stream_ends_with_the_server_s() -> None:
    async def stream(request: web.Request) -> web.StreamResponse:
        async with sse_response(request) as response:
            await response.send(snapshot(1), event="snapshot")
        return response

    app = web.Application()
    app.router.add_get("/api/v1/stream", stream)

    async def read(url: str) -> int:
        async with SauronClient(url) as api:
            return len([doc async for doc in api.stream()])

    with serve_in_thread(app) as url:
        assert asyncio.run(asyncio.wait_for(read(url), 20)) == 1


def test_a_first_connection_that_fails_raises_even_with_reconnect() -> None:
    async def read() -> None:
        async with SauronClient("http://127.0.0.1:9") as api:
            async for _ in api.stream(reconnect=True):
                pass

    try:
        asyncio.run(asyncio.wait_for(read(), 20))
    except ApiError as exc:
        assert exc.status == 0 and exc.hint
    else:
        raise AssertionError("no error")
