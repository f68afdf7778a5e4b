"""What the testbed's node processes share: a TUN reader on the event loop,
readiness on stdout, and writing the ground truth on SIGTERM."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import sys
from collections.abc import Callable

TUN_MTU = 2000


def drain_tun(fd: int, handle: Callable[[bytes], None]) -> None:
    """Reads every packet waiting on a non-blocking TUN fd."""
    while True:
        try:
            packet = os.read(fd, TUN_MTU)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.EAGAIN:
                return
            raise
        handle(packet)


def write_tun(fd: int, packet: bytes) -> bool:
    try:
        os.write(fd, packet)
        return True
    except OSError:
        return False


async def serve_until_terminated(on_stop: Callable[[], None]) -> None:
    """Says "ready", then waits for SIGTERM or SIGINT and runs on_stop."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    on_stop()
    sys.stdout.flush()
