"""Who may ask, and how often: an optional bearer token (the health probes
and the dashboard's page and files stay open) and a token bucket per client address. Rate is checked before
the token, so guessing tokens is throttled too.

Per-UE data (the per-session routes: UE addresses, TEIDs, SUPIs, byte
counts per session) is the operator's only: it needs the token, or a
request over the agent's UNIX socket from the agent's own user or root
(the socket file is 0600; the peer's credentials are checked too). Without
a token, the per-slice aggregates and the probes stay open on loopback and
the per-session routes answer 403 over TCP."""

from __future__ import annotations

import hmac
import os
import socket
import struct
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware

from sauron.service.dashboard.routes import is_open_path
from sauron.service.problems import problem

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPEN_PATHS = frozenset({"/healthz", "/readyz"})
#: the routes that show single sessions (UE addresses, TEIDs, SUPIs), as
#: the router matched them (whatever spelling of the path reached them).
#: The security routes are not among them: their counts are per slice, and
#: their detections name TEIDs and outer (gNB or attacker) addresses, never
#: a UE's address or SUPI
PER_UE_ROUTES = frozenset({"/api/v1/sessions", "/api/v1/slices/{name}/sessions"})
_PEER_CREDENTIALS = struct.Struct("3i")  # pid, uid, gid
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


def is_per_ue(request: web.Request) -> bool:
    resource = request.match_info.route.resource
    return resource is not None and resource.canonical in PER_UE_ROUTES


def local_peer_uid(request: web.Request) -> int | None:
    """The user id of the process at the other end of a UNIX socket (None
    over TCP)."""
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family != socket.AF_UNIX:
        return None
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEER_CREDENTIALS.size)
    return int(_PEER_CREDENTIALS.unpack(raw)[1])


def is_trusted_peer(request: web.Request) -> bool:
    """A request over the UNIX socket from root or the agent's own user."""
    uid = local_peer_uid(request)
    return uid is not None and uid in (0, os.geteuid())


def access_middleware(token: str | None) -> Middleware:
    """The token on every route but the open ones (when there is a token);
    per-UE routes closed over TCP without one; the UNIX socket's trusted
    peers ask without."""
    expected = f"Bearer {token}".encode() if token else None

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS or is_open_path(request.path) or is_trusted_peer(request):
            return await handler(request)
        if expected is not None:
            # bytes that are not UTF-8 come decoded with surrogates: kept, never raised on
            given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
            if not hmac.compare_digest(given, expected):
                return problem(
                    401,
                    "Unauthorized",
                    "a valid bearer token is required (Authorization: Bearer ...)",
                    headers={"WWW-Authenticate": 'Bearer realm="sauron"'},
                )
        elif is_per_ue(request):
            return problem(
                403,
                "Forbidden",
                "per-UE data (UE addresses, TEIDs, SUPIs) is the operator's: give the agent a "
                "token (service.token_file) and send it, or ask over the agent's UNIX socket "
                "(service.socket) as root",
            )
        return await handler(request)

    return check
