"""The service on a free loopback port, in a thread of its own: for clients
that block (the property tests, the CLI in a subprocess)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

from sauron.agent.runtime import AgentRuntime


@contextmanager
def serve_in_thread(app: web.Application, runtime: AgentRuntime | None = None) -> Iterator[str]:
    """Yields the base URL; stops the server and its loop on exit. With
    `runtime`, the runtime runs on the server's loop (started before it
    serves, stopped after); without, what the service reads is driven by
    the test."""
    loop = asyncio.new_event_loop()
    if runtime is not None:
        loop.run_until_complete(runtime.start())
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.run_until_complete(runner.cleanup())
        if runtime is not None:
            loop.run_until_complete(runtime.stop())
        loop.close()
