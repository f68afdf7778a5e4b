"""Errors as RFC 9457 problem details, naming the offending parameter; no
stack trace ever reaches a client."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
KEPT_HEADERS = frozenset({"Allow", "Retry-After", "WWW-Authenticate"})


def problem(
    status: int,
    title: str,
    detail: str,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body: dict[str, object] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if param is not None:
        body["param"] = param
    return web.Response(
        status=status, text=json.dumps(body), content_type=PROBLEM_JSON, headers=headers
    )


class BadParameter(web.HTTPBadRequest):
    def __init__(self, param: str, detail: str) -> None:
        super().__init__()
        self.param = param
        self.detail = detail


class NotFound(web.HTTPNotFound):
    def __init__(self, detail: str) -> None:
        super().__init__()
        self.detail = detail


@web.middleware
async def problem_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except BadParameter as exc:
        return problem(400, "Bad parameter", exc.detail, exc.param)
    except NotFound as exc:
        return problem(404, "Not found", exc.detail)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        # keep what the status needs (Allow on 405, for one)
        kept = {k: v for k, v in exc.headers.items() if k in KEPT_HEADERS}
        return problem(exc.status, exc.reason, exc.text or exc.reason, headers=kept)
    except Exception:
        log.exception("request failed", extra={"path": request.path})
        return problem(500, "Internal error", "the request failed; the agent's log has the details")
