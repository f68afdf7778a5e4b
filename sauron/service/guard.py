"""Who may ask, and how often: an optional bearer token (the health probes
and the dashboard's page and files stay open) and a token bucket per client address. Rate is checked before
the token, so guessing tokens is throttled too."""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware

from sauron.dashboard.routes import is_open_path
from sauron.service.problems import problem

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPEN_PATHS = frozenset({"/healthz", "/readyz"})
#: client addresses remembered by the rate limiter (least recent forgotten)
MAX_TRACKED_CLIENTS = 10_000


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """`rate` requests per second per client address, bursts up to `burst`."""

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.clients: OrderedDict[str, _Bucket] = OrderedDict()
        self.refused = 0

    def allow(self, client: str) -> float:
        """0 when allowed, else the seconds until a request would be."""
        now = self.clock()
        bucket = self.clients.pop(client, None) or _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        self.clients[client] = bucket
        if len(self.clients) > MAX_TRACKED_CLIENTS:
            self.clients.popitem(last=False)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        self.refused += 1
        return (1 - bucket.tokens) / self.rate


def rate_middleware(
    limiter: RateLimiter,
) -> Middleware:
    @web.middleware
    async def limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        wait = limiter.allow(request.remote or "unknown")
        if wait > 0:
            return problem(
                429,
                "Too many requests",
                f"more than {limiter.rate:g} requests per second from this address",
                headers={"Retry-After": str(max(1, round(wait + 0.5)))},
            )
        return await handler(request)

    return limit


def token_middleware(token: str) -> Middleware:
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS or is_open_path(request.path):
            return await handler(request)
        # bytes that are not UTF-8 come decoded with surrogates: kept, never raised on
        given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, expected):
            return problem(
                401,
                "Unauthorized",
                "a valid bearer token is required (Authorization: Bearer ...)",
                headers={"WWW-Authenticate": 'Bearer realm="sauron"'},
            )
        return await handler(request)

    return check
