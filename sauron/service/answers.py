"""Answers encoded once per interval, served as bytes with the HTTP caching
clients and proxies understand.

Everything a cached route shows (history, SLA, energy, the counters) moves
only when the engine completes a tick, so an answer is built, encoded and
hashed once per engine generation and path with its query, then served to
every client asking for it until the next tick: a wall of dashboards costs
what one costs. Queries that are not the default are cached the same way,
up to MAX_ANSWERS and MAX_ANSWER_BYTES per interval; beyond that they are
built on demand.

Each answer carries a strong ETag (a hash of its body): `If-None-Match`
with it gets a 304 and no body. `Cache-Control: max-age` runs to the next
expected tick, never past it. A body of GZIP_MIN_BYTES or more goes out
gzip-compressed to a client that accepts it (compressed once, when first
asked for), with an ETag of its own and `Vary: Accept-Encoding`.

The encoder is msgspec's: measured on the service's own documents it
encodes 7x faster than the standard library and 1.4x faster than orjson
(bench/service.py, docs/performance.md)."""

from __future__ import annotations

import gzip
import hashlib
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import web

from sauron.kpi.engine import KpiEngine
from sauron.kpi.records import Snapshot

JSON = "application/json; charset=utf-8"
#: the distinct answers kept per interval (paths with their queries), and
#: their bytes: a script asking for every window cannot grow the agent
MAX_ANSWERS = 512
MAX_ANSWER_BYTES = 16 * 1024 * 1024
#: smaller bodies are not worth a compression
GZIP_MIN_BYTES = 1024
#: zlib's default: within a few per cent of the best, several times faster
GZIP_LEVEL = 6

_encoder = msgspec.json.Encoder()


def encode(doc: Any) -> bytes:
    """A document as compact JSON bytes."""
    return _encoder.encode(doc)


@dataclass
class Answer:
    body: bytes
    content_type: str = JSON
    etag: str = ""
    #: kept for other requests (then worth compressing once)
    kept: bool = False
    _gzipped: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.etag:
            self.etag = '"' + hashlib.blake2b(self.body, digest_size=12).hexdigest() + '"'

    @property
    def gzip_etag(self) -> str:
        return self.etag[:-1] + '-gz"'

    def gzipped(self) -> bytes:
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.body, GZIP_LEVEL, mtime=0)
        return self._gzipped


class Answers:
    """The answers of the engine's current generation, by path and query."""

    def __init__(self) -> None:
        self.generation = -1
        self.entries: dict[str, Answer] = {}
        self.bytes = 0
        #: keys asked once this generation: a key is kept when asked again,
        #: so one-off queries (a sliding `since`) never fill the budget
        self.asked: set[str] = set()

    def get(self, generation: Callable[[], int], key: str, make: Callable[[], Answer]) -> Answer:
        """The answer for `key` at the engine's `generation()`, built by
        `make` unless this generation's is kept."""
        now = generation()
        if now > self.generation:
            self.generation, self.entries, self.bytes, self.asked = now, {}, 0, set()
        answer = self.entries.get(key) if now == self.generation else None
        if answer is not None:
            return answer
        answer = make()
        # the engine ticks in a thread of its own: an answer built while a
        # tick landed may hold some of both, so it is kept for neither
        asked_before = key in self.asked
        if not asked_before and len(self.asked) < 4 * MAX_ANSWERS:
            self.asked.add(key)
        if (
            asked_before
            and generation() == now == self.generation
            and len(self.entries) < MAX_ANSWERS
            and self.bytes + len(answer.body) <= MAX_ANSWER_BYTES
        ):
            self.entries[key] = answer
            self.bytes += len(answer.body)
            answer.kept = True
        return answer


class EncodedPoints:
    """Each snapshot's point documents (sauron.service.documents.point_doc),
    encoded once: a snapshot does not change once it is in the history, so
    a series after a tick encodes only the new interval's point. Kept as
    bytes (which the garbage collector never scans) for as long as the
    snapshot lives; keyed by the snapshot's id, checked against a weak
    reference so that a reused id never finds another snapshot's points."""

    def __init__(self) -> None:
        self._points: dict[int, tuple[weakref.ref[Snapshot], dict[tuple[str, bool], bytes]]] = {}

    def get(self, snap: Snapshot, name: str, buckets: bool, make: Callable[[], Any]) -> bytes:
        key = id(snap)
        entry = self._points.get(key)
        if entry is None or entry[0]() is not snap:
            entry = (weakref.ref(snap, lambda _: self._points.pop(key, None)), {})
            self._points[key] = entry
        encoded = entry[1].get((name, buckets))
        if encoded is None:
            encoded = entry[1][name, buckets] = encode(make())
        return encoded

    def __len__(self) -> int:
        return len(self._points)


class ContentAnswers:
    """Answers kept by their content, for a document that also moves
    between ticks (the exposition: its exporter and stream families): given
    in parts, the largest of them the same string object until the next
    tick, so finding the answer costs a hash of the small parts only; its
    ETag and compressed form are made once per distinct content."""

    def __init__(self, keep: int = 8) -> None:
        self.keep = keep
        self.entries: OrderedDict[tuple[str, ...], Answer] = OrderedDict()

    def get(self, parts: tuple[str, ...], content_type: str) -> Answer:
        answer = self.entries.get(parts)
        if answer is None:
            answer = Answer("".join(parts).encode(), content_type, kept=True)
            self.entries[parts] = answer
            if len(self.entries) > self.keep:
                self.entries.popitem(last=False)
        else:
            self.entries.move_to_end(parts)
        return answer


def _accepts_gzip(request: web.Request) -> bool:
    """Accept-Encoding (RFC 9110 12.5.3): gzip by its name, else by `*`;
    a weight of 0 refuses; a weight that does not parse refuses too."""
    weights: dict[str, float] = {}
    for coding in request.headers.get("Accept-Encoding", "").split(","):
        name, *params = (part.strip() for part in coding.split(";"))
        if not name:
            continue
        weight = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights[name.lower()] = weight
    for name in ("gzip", "x-gzip", "*"):
        if name in weights:
            return weights[name] > 0
    return False


def _matches(request: web.Request, etag: str) -> bool:
    """If-None-Match against the tag of the form being sent (its weak
    form, W/, compares equal, RFC 9110 13.1.2)."""
    header = request.headers.get("If-None-Match")
    if header is None:
        return False
    given = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in given or etag in given


def max_age(engine: KpiEngine, interval_s: float) -> int:
    """Whole seconds until the next tick is due (the last tick's time and
    the configured interval; never more than one interval, whatever the
    last interval lasted, such as the first after a restart)."""
    latest = engine.history.latest()
    if latest is None:
        return 0
    return max(0, min(int(interval_s), int(latest.time + interval_s - engine.clock())))


def respond(request: web.Request, answer: Answer, max_age_s: int) -> web.Response:
    """The answer as the request can take it: 304 when it holds the
    current tag, gzip when it accepts it and the body is worth it."""
    compress = len(answer.body) >= GZIP_MIN_BYTES
    headers = {"Cache-Control": f"max-age={max_age_s}"}
    if compress:
        headers["Vary"] = "Accept-Encoding"
    # an answer built for one request is not compressed: that would cost
    # the event loop for each of them
    gz = compress and answer.kept and _accepts_gzip(request)
    headers["ETag"] = answer.gzip_etag if gz else answer.etag
    if _matches(request, headers["ETag"]):
        return web.Response(status=304, headers=headers)
    if gz:
        headers["Content-Encoding"] = "gzip"
        body = answer.gzipped()
    else:
        body = answer.body
    headers["Content-Type"] = answer.content_type
    return web.Response(body=body, headers=headers)


Document = Callable[[web.Request], Any]


def _answer(doc: Any) -> Answer:
    """A document, or its JSON bytes when the route encoded it itself."""
    return Answer(doc if isinstance(doc, bytes) else encode(doc))


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: where the application keeps its answers and its encoded series points
#: (sauron.service.app)
ANSWERS = web.AppKey("answers", Answers)
POINTS = web.AppKey("points", EncodedPoints)


def per_interval(
    engine_of: Callable[[web.Request], KpiEngine], interval_of: Callable[[web.Request], float]
) -> Callable[[Document], Handler]:
    """A handler that builds its document at most once per interval and
    query: `document(request)` builds it (raising a problem for a bad
    query, which is never cached)."""

    def wrap(document: Document) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            engine = engine_of(request)
            answers = request.config_dict[ANSWERS]
            key = request.path_qs
            answer = answers.get(lambda: engine.generation, key, lambda: _answer(document(request)))
            return respond(request, answer, max_age(engine, interval_of(request)))

        handler.__name__ = getattr(document, "__name__", "handler")
        handler.__doc__ = document.__doc__
        handler.kept_per_interval = True  # type: ignore[attr-defined]
        return handler

    return wrap
