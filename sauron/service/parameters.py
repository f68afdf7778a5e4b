"""The query parameters of the versioned routes, parsed and checked apart
from the handlers: a value that does not parse, or is out of its range, is
a BadParameter naming the parameter (400, problem details)."""

from __future__ import annotations

import math

from aiohttp import web

from sauron.service.problems import BadParameter


def bool_param(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "false")
    if raw not in ("true", "false"):
        raise BadParameter(name, f"{name} must be true or false, not {raw!r}")
    return raw == "true"


def float_param(request: web.Request, name: str, minimum: float | None = None) -> float | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadParameter(
            name, f"{name} must be a number (unix seconds or seconds), not {raw!r}"
        ) from None
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        raise BadParameter(
            name, f"{name} must be a finite number{'' if minimum is None else f' >= {minimum}'}"
        )
    return value


def int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(name, f"{name} must be an integer, not {raw!r}") from None
    if not lo <= value <= hi:
        raise BadParameter(name, f"{name} must be between {lo} and {hi}")
    return value


def choice(request: web.Request, name: str, choices: tuple[str, ...], default: str | None) -> str:
    """One of `choices`; required when there is no default."""
    raw = request.query.get(name, default)
    if raw is None:
        raise BadParameter(name, f"{name} is required: one of {', '.join(choices)}")
    if raw not in choices:
        raise BadParameter(name, f"{name} must be one of {', '.join(choices)}, not {raw!r}")
    return raw


def since_until(request: web.Request) -> tuple[float | None, float | None]:
    """The window a route asks for (unix seconds, both optional)."""
    since = float_param(request, "since")
    until = float_param(request, "until")
    if since is not None and until is not None and until < since:
        raise BadParameter("until", "until is before since")
    return since, until
