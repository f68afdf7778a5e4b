"""The service builds each interval's answers once and serves them as
bytes with HTTP caching: what a client relies on is that a cached answer
is never stale past its interval, that a 304 carries no body and the
answer's ETag, and that a compressed and a plain answer are the same
document. Over the agent's runtime reading a data plane the test feeds,
ticked by hand on a clock the test moves. No kernel, no root."""

from __future__ import annotations

import asyncio
import gc
import gzip
import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from fake_data_plane import FakeDataPlane

from sauron.abi import layout
from sauron.agent.runtime import AgentRuntime
from sauron.catalog import Catalog, load_catalog
from sauron.export.prometheus import render
from sauron.kpi.history import History
from sauron.service.answers import (
    ANSWERS,
    GZIP_MIN_BYTES,
    MAX_ANSWER_BYTES,
    MAX_ANSWERS,
    POINTS,
    Answer,
    Answers,
)
from sauron.service.app import ServiceOptions, create_app
from sauron.service.documents import point_doc
from sauron.service.openapi import KEPT_PER_INTERVAL
from sauron.service.openapi import document as openapi_document

#: every route whose answer is kept per interval, with a query or two
CACHED = (
    "/api/v1/slices",
    "/api/v1/slices/embb",
    "/api/v1/slices/unclassified",
    "/api/v1/slices/embb/kpis",
    "/api/v1/slices/embb/kpis?step=2",
    "/api/v1/slices/urllc/kpis?buckets=true",
    "/api/v1/slices/embb/histograms/transit?direction=uplink",
    "/api/v1/sla",
    "/api/v1/energy",
    "/api/v1/kpis",
    "/api/v1/histograms/geometry",
    "/api/v1/openapi.json",
    "/metrics",
)
OPEN = ServiceOptions(rate_per_s=0)
PLAIN: dict[str, Any] = {"auto_decompress": False, "headers": {"Accept-Encoding": "identity"}}


class Node:
    """The runtime over a fed data plane, ticked each `interval_s` of a
    clock the test moves."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.data = FakeDataPlane(catalog)
        self.now = 1_800_000_000.0
        self.runtime = AgentRuntime(catalog, self.data, clock=lambda: self.now)

    def traffic(self, packets: int) -> None:
        for name, direction in (("embb", layout.DIR_DOWNLINK), ("urllc", layout.DIR_UPLINK)):
            s = self.catalog.get(name)
            assert s is not None
            self.data.count(layout.POINT_N3_INGRESS, s.id, direction, packets, 1200)

    def tick(self) -> None:
        self.now += 1.0
        self.runtime.engine.tick()


Body = Callable[[Node, TestClient[Any, Any], TestClient[Any, Any]], Awaitable[None]]


def serve_twice(catalog: Catalog, body: Body) -> None:
    """Two services over one runtime, each with answers of its own; the
    clients take plain answers unless a request asks otherwise, and see
    the bytes as sent."""
    node = Node(catalog)
    node.traffic(10)
    node.tick()
    serve_once(node, body)


def serve_once(node: Node, body: Body) -> None:
    async def run() -> None:
        async with (
            TestClient(TestServer(create_app(node.runtime, OPEN)), **PLAIN) as a,
            TestClient(TestServer(create_app(node.runtime, OPEN)), **PLAIN) as b,
        ):
            await body(node, a, b)

    asyncio.run(run())


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def test_a_kept_answer_is_the_fresh_one_until_the_next_tick_and_never_after(
    catalog: Catalog,
) -> None:
    """Interval after interval, with traffic counted between the ticks and
    requests before and after each: the kept answer's body is, byte for
    byte, the one a service that never kept anything builds at that
    moment; it moves at the tick, and its ETag with it."""

    async def body(node: Node, kept: TestClient[Any, Any], other: TestClient[Any, Any]) -> None:
        seen: dict[str, set[str]] = {path: set() for path in CACHED}
        for interval in range(4):
            for _ in range(2):  # asked twice: the second is the kept answer
                for path in CACHED:
                    a = await kept.get(path)
                    assert a.status == 200, (path, await a.text())
                    # the other service forgets what it kept: its answer is
                    # built from the engine as it is now
                    other.app[ANSWERS].generation = -1
                    b = await other.get(path)
                    assert await a.read() == await b.read(), (interval, path)
                    seen[path].add(a.headers["ETag"])
            node.traffic(5 + interval)  # counted, not yet measured: no tick
            assert (await (await kept.get("/api/v1/slices/embb")).json())["kpis"][
                "time"
            ] == node.now
            node.tick()
        # the answers that move with the traffic had a new ETag each interval
        for path in ("/api/v1/slices/embb", "/api/v1/slices/embb/kpis", "/api/v1/sla"):
            assert len(seen[path]) == 4, (path, seen[path])
        for path in ("/api/v1/kpis", "/api/v1/histograms/geometry"):
            assert len(seen[path]) == 1, (path, seen[path])

    serve_twice(catalog, body)


def test_an_answer_says_how_long_it_holds_never_past_the_next_tick(catalog: Catalog) -> None:
    async def body(node: Node, kept: TestClient[Any, Any], _: TestClient[Any, Any]) -> None:
        latest = node.runtime.engine.history.latest()
        assert latest is not None
        for elapsed, left in ((0.0, 1), (0.4, 0), (0.99, 0), (5.0, 0)):
            node.now = latest.time + elapsed
            r = await kept.get("/api/v1/slices")
            assert r.headers["Cache-Control"] == f"max-age={left}", elapsed
        # /metrics also shows what moves between ticks: always revalidated
        assert (await kept.get("/metrics")).headers["Cache-Control"] == "max-age=0"
        # the first interval after a restart covers the downtime: the next
        # tick is still one configured interval away
        node.now += 600.0
        node.runtime.engine.tick()
        latest = node.runtime.engine.history.latest()
        assert latest is not None and latest.interval_s > 500
        r = await kept.get("/api/v1/slices")
        assert r.headers["Cache-Control"] == f"max-age={int(node.runtime.interval_s)}"

    serve_twice(catalog, body)


def test_the_tick_moves_the_generation_after_everything_it_shows() -> None:
    """An answer kept at a generation must hold all of that tick: the
    generation moves once the history, the SLA and the counters have."""
    node = Node(load_catalog())
    engine = node.runtime.engine
    seen: list[int] = []
    add = engine.history.add

    def watched_add(snap: Any) -> None:
        seen.append(engine.generation)
        add(snap)

    engine.history.add = watched_add  # type: ignore[method-assign]
    for n in range(3):
        node.traffic(1)
        node.tick()
        assert seen[-1] == n and engine.generation == n + 1


def test_a_304_carries_no_body_and_the_answers_etag(catalog: Catalog) -> None:
    async def body(node: Node, kept: TestClient[Any, Any], _: TestClient[Any, Any]) -> None:
        for path in CACHED:
            first = await kept.get(path)
            etag = first.headers["ETag"]
            for given in (etag, f"W/{etag}", f'"other", {etag}', "*"):
                again = await kept.get(path, headers={"If-None-Match": given})
                assert again.status == 304, (path, given)
                assert await again.read() == b""
                assert again.headers["ETag"] == etag
                assert "Content-Length" not in again.headers or again.content_length == 0
            stale = await kept.get(path, headers={"If-None-Match": '"not-this-one"'})
            assert stale.status == 200 and await stale.read() == await first.read()
        # after a tick with traffic the old tag no longer matches
        first = await kept.get("/api/v1/slices/embb")
        node.traffic(3)
        node.tick()
        after = await kept.get(
            "/api/v1/slices/embb", headers={"If-None-Match": first.headers["ETag"]}
        )
        assert after.status == 200 and after.headers["ETag"] != first.headers["ETag"]
        assert (await after.json())["kpis"]["time"] == node.now

    serve_twice(catalog, body)


@pytest.mark.parametrize(
    ("accept", "gzip_sent"),
    [
        ("gzip", True),
        ("GZIP", True),
        ("*", True),
        ("br;q=1, x-gzip", True),
        ("gzip;q=0", False),
        ("gzip;Q=0", False),
        ("gzip;x=1;q=0", False),
        ("gzip;q=zero", False),
        ("*;q=0", False),
        ("*, gzip;q=0", False),
        ("identity", False),
        ("", False),
    ],
)
def test_accept_encoding_is_read_as_the_rfc_says(
    catalog: Catalog, accept: str, gzip_sent: bool
) -> None:
    async def body(node: Node, kept: TestClient[Any, Any], _: TestClient[Any, Any]) -> None:
        for _ in range(2):  # the second is the kept answer
            r = await kept.get("/metrics", headers={"Accept-Encoding": accept})
        assert ("Content-Encoding" in r.headers) == gzip_sent, r.headers

    serve_twice(catalog, body)


def test_a_head_request_gets_the_headers_and_no_body(catalog: Catalog) -> None:
    async def body(node: Node, kept: TestClient[Any, Any], _: TestClient[Any, Any]) -> None:
        got = await kept.get("/api/v1/slices")
        head = await kept.head("/api/v1/slices")
        assert head.status == 200 and await head.read() == b""
        assert head.headers["ETag"] == got.headers["ETag"]
        assert int(head.headers["Content-Length"]) == len(await got.read())

    serve_twice(catalog, body)


def test_a_compressed_and_a_plain_answer_are_the_same_document(catalog: Catalog) -> None:
    async def body(node: Node, kept: TestClient[Any, Any], _: TestClient[Any, Any]) -> None:
        compressed_any = False
        for path in CACHED:
            plain = await kept.get(path, headers={"Accept-Encoding": "identity"})
            packed = await kept.get(path, headers={"Accept-Encoding": "br, gzip;q=0.8"})
            refused = await kept.get(path, headers={"Accept-Encoding": "gzip;q=0"})
            raw = await plain.read()
            assert "Content-Encoding" not in plain.headers
            assert "Content-Encoding" not in refused.headers and await refused.read() == raw
            if len(raw) < GZIP_MIN_BYTES:
                assert "Content-Encoding" not in packed.headers, path
                continue
            compressed_any = True
            assert packed.headers["Content-Encoding"] == "gzip", path
            assert packed.headers["Vary"] == plain.headers["Vary"] == "Accept-Encoding"
            assert packed.headers["ETag"] != plain.headers["ETag"]
            unpacked = gzip.decompress(await packed.read())
            assert unpacked == raw, path
            if path != "/metrics":
                assert json.loads(unpacked) == json.loads(raw)
            # a cache holding the compressed form revalidates it too
            again = await kept.get(
                path,
                headers={"Accept-Encoding": "gzip", "If-None-Match": packed.headers["ETag"]},
            )
            assert again.status == 304 and again.headers["ETag"] == packed.headers["ETag"]
            # the other form's tag is another representation: a full answer
            other_form = await kept.get(
                path,
                headers={"Accept-Encoding": "gzip", "If-None-Match": plain.headers["ETag"]},
            )
            assert other_form.status == 200 and other_form.headers["ETag"] == packed.headers["ETag"]
        assert compressed_any

    serve_twice(catalog, body)


def without_process(text: str) -> str:
    return "".join(line for line in text.splitlines(True) if "process_" not in line)


def test_metrics_shows_what_moves_between_ticks(catalog: Catalog) -> None:
    """The exposition's engine families are kept per tick; the live
    stream's and the exporters' are read at every scrape."""

    async def body(node: Node, kept: TestClient[Any, Any], _: TestClient[Any, Any]) -> None:
        engine = node.runtime.engine
        for _ in range(3):
            shown = await (await kept.get("/metrics")).text()
            fresh = render(engine, None, node.runtime.liveness.failures())
            # the process' own figures are read when the tick's text is rendered
            assert without_process(shown).startswith(without_process(fresh)), (
                "the engine's families are the current tick's"
            )
            node.traffic(4)
            node.tick()
        before = await (await kept.get("/metrics")).text()
        assert "sauron_stream_clients 0" in before
        async with kept.get("/api/v1/stream") as stream:
            await stream.content.readline()  # the stream has begun
            during = await (await kept.get("/metrics")).text()
            assert "sauron_stream_clients 1" in during

    serve_twice(catalog, body)


def test_the_openapi_document_says_which_routes_keep_their_answers(catalog: Catalog) -> None:
    """The 304 and the cache headers are declared on exactly the routes
    that keep their answers."""
    app = create_app(AgentRuntime(catalog, FakeDataPlane(catalog)))
    kept = set()
    for resource in app.router.resources():
        routes = [resource]
        if isinstance(resource, web.PrefixedSubAppResource):
            routes = list(resource.get_info()["app"].router.resources())
        for r in routes:
            for route in r:
                if getattr(route.handler, "kept_per_interval", False):
                    kept.add(r.canonical)
    assert kept == set(KEPT_PER_INTERVAL)
    paths = openapi_document(())["paths"]
    for path, item in paths.items():
        responses = item["get"]["responses"]
        assert ("304" in responses) == (path in kept), path


def test_the_kept_answers_are_bounded_and_those_past_the_bound_still_right() -> None:
    answers = Answers()
    # asked once, a query is built for its request alone: one-off queries
    # (a sliding window) never take the room of those asked again and again
    for n in range(MAX_ANSWERS):
        answers.get(lambda: 1, f"/once?{n}", lambda: Answer(b"x"))
    assert not answers.entries
    for _ in range(2):
        for n in range(MAX_ANSWERS + 100):
            got = answers.get(lambda: 1, f"/q?{n}", lambda n=n: Answer(str(n).encode()))
            assert got.body == str(n).encode()
    assert len(answers.entries) == MAX_ANSWERS and all(a.kept for a in answers.entries.values())
    big = b"x" * (MAX_ANSWER_BYTES // 2 + 1)
    for _ in range(2):
        answers.get(lambda: 2, "/a", lambda: Answer(big))
        answers.get(lambda: 2, "/b", lambda: Answer(big))
    assert list(answers.entries) == ["/a"] and answers.bytes == len(big)


def test_an_answer_built_while_a_tick_landed_is_not_kept() -> None:
    answers, generation = Answers(), [5]

    def built_across_a_tick() -> Answer:
        generation[0] += 1  # the engine's thread completes a tick meanwhile
        return Answer(b"some of both")

    answers.get(lambda: generation[0], "/x", lambda: Answer(b"asked once"))
    assert answers.get(lambda: generation[0], "/x", built_across_a_tick).body == b"some of both"
    assert "/x" not in answers.entries
    answers.get(lambda: generation[0], "/x", lambda: Answer(b"asked once at the new tick"))
    fresh = answers.get(lambda: generation[0], "/x", lambda: Answer(b"the new tick's"))
    assert fresh.body == b"the new tick's" and answers.entries["/x"] is fresh
    # an older generation (a request that read it before the tick) keeps nothing
    assert answers.get(lambda: 5, "/y", lambda: Answer(b"old")).body == b"old"
    assert "/y" not in answers.entries and answers.generation == 6


def test_a_series_encoded_point_by_point_is_the_document_built_whole(catalog: Catalog) -> None:
    """/kpis joins each snapshot's point as encoded once: the answer is the
    document built from the history at that moment, through the history's
    folding of old intervals too (a small history here), and a snapshot
    that leaves the history takes its encoded points with it."""
    node = Node(catalog)
    node.runtime.engine.history = History(recent=6, fold=2, folded=3)

    async def body(node: Node, kept: TestClient[Any, Any], _: TestClient[Any, Any]) -> None:
        history = node.runtime.engine.history
        for n in range(14):
            node.traffic(n + 1)
            node.tick()
            for query, step, buckets in (("", 0, False), ("?step=2&buckets=true", 2, True)):
                got = await (await kept.get(f"/api/v1/slices/embb/kpis{query}")).json()
                points, last = [], -math.inf
                for snap in history.between():
                    if step and snap.time - last < step:
                        continue
                    last = snap.time
                    points.append(point_doc(snap, snap.slices["embb"], buckets))
                assert got == json.loads(json.dumps({"slice": "embb", "points": points})), n
        gc.collect()
        assert len(kept.app[POINTS]) <= len(history)

    serve_once(node, body)
