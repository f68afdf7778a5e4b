"""How the service holds its connections: aiohttp's server settings that
bound what a client can keep. An idle connection, or one whose request
headers do not arrive in full, is closed `IDLE_S` seconds after it opened
or after its last answer (aiohttp's default is an hour: enough for a few
clients sending one header line every ten seconds to hold the service).
A request aiohttp cannot parse is answered 400 and logged as one debug
line, never a traceback per malformed request."""

from __future__ import annotations

import gc
import logging

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

#: seconds an idle connection or an unfinished request's headers are kept
IDLE_S = 5.0
#: the longest request line and header line taken (aiohttp's default)
MAX_LINE = 8190

http_log = logging.getLogger("sauron.service.http")
#: the process's startup objects are frozen once (service_runner)
_frozen = False


class ClientErrors(logging.Filter):
    """aiohttp logs a request it cannot parse as an error with its
    traceback: it is the client's, told to the client (400). One debug
    line when debugging, nothing otherwise."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError) or (exc.code or 400) >= 500:
            return True
        if not http_log.isEnabledFor(logging.DEBUG):
            return False
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        record.msg, record.args = "malformed request refused", ()
        record.exc_info, record.exc_text = None, None
        record.__dict__["error"] = exc.message
        return True


http_log.addFilter(ClientErrors())


def service_runner(app: web.Application) -> web.AppRunner:
    """The runner every way of serving uses (`sauron run`, the demo). The
    objects the process holds for good by now (its modules, the compiled
    programs' metadata, the catalog) are frozen out of the garbage
    collector's full collections, which otherwise walk them all and stop
    every request for 30 to 70 ms (bench/service.py: the open loop's p99
    went from 12-17 ms to 4-5 ms)."""
    global _frozen
    if not _frozen:
        gc.collect()  # what is garbage now is freed, not frozen for good
        gc.freeze()
        _frozen = True
    return web.AppRunner(
        app,
        handle_signals=False,
        keepalive_timeout=IDLE_S,
        logger=http_log,
        max_line_size=MAX_LINE,
        max_field_size=MAX_LINE,
    )
