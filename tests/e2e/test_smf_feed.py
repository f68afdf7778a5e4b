"""The Open5GS SMF session feed against a local aiohttp server that serves
`/pdu-info` in the shape Open5GS documents in src/smf/pdu-info.c (the
comment at its top: items[].supi, items[].pdu[] with psi, dnn, ipv4,
snssai {sst, sd}, qos_flows [{qfi, 5qi}], n3 {gnb, upf} {teid, addr
"[ip]:2152"}, pdu_state; pager {page, page_size, count, next "?page=N"}),
paged at 100 UEs as Open5GS pages. The sessions reach the session table,
the classification maps and the API; a failing or malformed SMF changes
nothing and says why."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from agent_process import REPO
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from learned_maps import teid_slice, ue_slice
from served import serve_in_thread

from sauron.agent.runtime import AgentRuntime, ProgramMaps
from sauron.bpf.loader import DataPlane
from sauron.catalog import Catalog
from sauron.control.plane import ControlPlane
from sauron.control.registry import SessionRegistry
from sauron.control.rules import LearnedRules
from sauron.control.settings import ControlPlaneConfig, SmfFeedConfig
from sauron.control.smf_feed import SmfFeed
from sauron.service import schemas
from sauron.service.app import ServiceOptions, create_app

pytestmark = [pytest.mark.kernel]

UES = 1_250
#: (SST, SD, DNN) of the default catalog's slices
SLICES = {
    "embb": (1, "000001", "internet"),
    "urllc": (2, "000001", "urllc"),
    "mmtc": (3, "000001", "iot"),
}

#: the per-session routes need the token
TOKEN = "smf-feed-test-token-0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def pdu_item(n: int, slice_name: str, gnb_teid: int | None = None) -> dict[str, Any]:
    """One UE with one PDU session, as Open5GS writes it."""
    sst, sd, dnn = SLICES[slice_name]
    return {
        "supi": f"imsi-00101{n:010d}",
        "pdu": [
            {
                "psi": 1,
                "dnn": dnn,
                "ipv4": f"10.99.{n // 250}.{n % 250 + 1}",  # in no catalog subnet
                "snssai": {"sst": sst, "sd": sd},
                "qos_flows": [{"qfi": 1, "5qi": 9}],
                "n3": {
                    "gnb": {"teid": gnb_teid or 1000 + n, "addr": "[192.168.168.100]:2152"},
                    "upf": {"teid": 0x9000 + n, "addr": "[192.168.168.7]:2152", "pdr_id": 2},
                },
                "pdu_state": "active",
                "ue_location_timestamp": 1778223227627488,
            }
        ],
        "ue_activity": "active",
    }


class FakeSmf:
    """Serves `items` paged; `status`/`body` override the answer."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.status = 200
        self.body: str | None = None
        self.requests: list[str] = []

    async def pdu_info(self, request: web.Request) -> web.Response:
        self.requests.append(request.path_qs)
        if self.status != 200:
            return web.Response(status=self.status, text="SMF busy")
        if self.body is not None:
            return web.Response(text=self.body, content_type="application/json")
        page = int(request.query.get("page", "0"))
        size = min(int(request.query.get("page_size", "100")), 100)
        chunk = self.items[page * size : (page + 1) * size]
        pager: dict[str, Any] = {"page": page, "page_size": size, "count": len(chunk)}
        if page > 0:
            pager["prev"] = f"/pdu-info?page={page - 1}"
        if (page + 1) * size < len(self.items):
            pager["next"] = f"/pdu-info?page={page + 1}"
        return web.json_response({"items": chunk, "pager": pager})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/pdu-info", self.pdu_info)
        return app


def with_smf(body: Callable[[FakeSmf, str], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        smf = FakeSmf()
        server = TestServer(smf.app())
        await server.start_server()
        try:
            return await body(smf, str(server.make_url("")).rstrip("/"))
        finally:
            await server.close()

    return asyncio.run(run())


def test_paged_sessions_reach_the_table_and_the_maps(
    dataplane: DataPlane, catalog: Catalog
) -> None:
    names = ["embb", "urllc", "mmtc"]
    registry = SessionRegistry(catalog, LearnedRules(dataplane, catalog))

    async def body(smf: FakeSmf, url: str) -> None:
        # more UEs than the catalog has subnet rules for: each is a host rule
        smf.items = [pdu_item(n, names[n % 3]) for n in range(UES)]
        feed = SmfFeed(url, registry)
        async with aiohttp.ClientSession() as http:
            assert await feed.poll_once(http)
            assert [q.split("&")[0] for q in smf.requests] == [
                f"/pdu-info?page={page}" for page in range(UES // 100 + 1)
            ]
            assert len(registry.sessions) == UES
            assert registry.rules is not None
            assert registry.rules.counts == {"teid_written": UES, "ue_written": UES}
            for n in (0, 1, 2, UES - 1):
                s = registry.sessions[("smf", url, f"imsi-00101{n:010d}", 1)]
                wanted = catalog.get(names[n % 3])
                assert wanted is not None
                assert (s.slice_id, s.slice_rule) == (wanted.id, "snssai")
                assert teid_slice(dataplane, 0x9000 + n) == wanted.id
                assert ue_slice(dataplane, s.ue_addresses[0]) == wanted.id
                # the gNB's TEID is the far end: not written (see control/rules.py)
                assert teid_slice(dataplane, 1000 + n) is None
            # a UE leaves, another's gNB moves its tunnel: the next reading says so
            gone = smf.items.pop(5)
            smf.items[0] = pdu_item(0, "embb", gnb_teid=4242)
            assert await feed.poll_once(http)
            assert len(registry.sessions) == UES - 1
            assert teid_slice(dataplane, 0x9005) is None
            assert ue_slice(dataplane, gone["pdu"][0]["ipv4"]) is None
            moved = registry.sessions[("smf", url, "imsi-001010000000000", 1)]
            assert 4242 in {t.teid for t in moved.tunnels if not t.local}
            assert registry.events["removed"] == 1 and registry.events["changed"] == 1
            assert registry.rules.counts["ue_written"] == UES  # the others left alone

    with_smf(body)


def test_a_failing_or_malformed_smf_changes_nothing_and_says_why(
    dataplane: DataPlane, catalog: Catalog
) -> None:
    registry = SessionRegistry(catalog, LearnedRules(dataplane, catalog))

    async def body(smf: FakeSmf, url: str) -> None:
        smf.items = [pdu_item(n, "urllc") for n in range(3)]
        feed = SmfFeed(url, registry, timeout_s=1.0)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as http:
            assert await feed.poll_once(http)
            smf.status = 503
            assert not await feed.poll_once(http)
            assert len(registry.sessions) == 3 and teid_slice(dataplane, 0x9000) is not None
            assert feed.status()["last_error"].endswith("HTTP 503")
            smf.status, smf.body = 200, '{"items": [{"pdu": []}]}'
            assert not await feed.poll_once(http)
            assert feed.status()["last_error"].endswith("field items.0.supi: Field required")
            smf.body = "<html>not json</html>"
            assert not await feed.poll_once(http)
            assert "JSONDecodeError" in feed.status()["last_error"]
            assert len(registry.sessions) == 3
            smf.body = None
            assert await feed.poll_once(http)
            assert feed.status()["consecutive_failures"] == 0 and feed.status()["failures"] == 3
        # the SMF stops answering at all
        feed.url = "http://127.0.0.1:9"
        async with aiohttp.ClientSession() as http:
            assert not await feed.poll_once(http)
        assert "ClientConnectorError" in (feed.status()["last_error"] or "")
        assert len(registry.sessions) == 3

    with_smf(body)


def test_a_password_in_the_smf_url_is_shown_nowhere(
    dataplane: DataPlane, catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    """Credentials in an SMF URL stay the client's: the feed's status, its
    error and its log line show user:***@."""
    registry = SessionRegistry(catalog, LearnedRules(dataplane, catalog))
    feed = SmfFeed("http://smf:s3cret@127.0.0.1:9", registry, timeout_s=1.0)

    async def poll() -> bool:
        async with aiohttp.ClientSession() as http:
            return await feed.poll_once(http)

    with caplog.at_level("WARNING", logger="sauron"):
        assert not asyncio.run(poll())
    shown = repr(feed.status()) + " ".join(repr(r.__dict__) for r in caplog.records)
    assert "smf:***@127.0.0.1:9" in shown and "s3cret" not in shown, shown


def test_the_api_lists_sessions_from_a_running_feed(dataplane: DataPlane, catalog: Catalog) -> None:
    async def body(smf: FakeSmf, url: str) -> None:
        smf.items = [pdu_item(n, ("embb", "urllc")[n % 2]) for n in range(4)]
        config = ControlPlaneConfig(open5gs_smf=[SmfFeedConfig(url=url, interval_s=0.05)])
        control = ControlPlane(catalog, dataplane, config)
        control.open()
        runtime = AgentRuntime(catalog, ProgramMaps(dataplane), control=control)
        app = create_app(runtime, options=ServiceOptions(token=TOKEN))
        async with runtime, TestClient(TestServer(app), headers=AUTH) as client:
            for _ in range(100):
                if len(control.registry.sessions) == 4:
                    break
                await asyncio.sleep(0.02)
            response = await client.get("/api/v1/sessions", params={"slice": "urllc"})
            doc = schemas.PduSessions.model_validate(await response.json())
            assert (doc.total, doc.count) == (2, 2)
            assert {s.supi for s in doc.sessions} == {
                "imsi-001010000000001",
                "imsi-001010000000003",
            }
            first = doc.sessions[0]
            assert (first.source, first.slice, first.slice_rule, first.dnn) == (
                "smf",
                "urllc",
                "snssai",
                "urllc",
            )
            assert first.snssai is not None and (first.snssai.sst, first.snssai.sd) == (2, "000001")
            assert doc.sources["smf_feeds"][0]["sessions"] == 4
            by_teid = await (await client.get("/api/v1/sessions", params={"teid": "0x9002"})).json()
            assert [s["supi"] for s in by_teid["sessions"]] == ["imsi-001010000000002"]
            bad = await client.get("/api/v1/sessions", params={"teid": "12"})
            assert bad.status == 400 and (await bad.json())["param"] == "teid"
        # the feed stops with the runtime
        polls = control.feeds[0].polls
        await asyncio.sleep(0.3)
        assert control.feeds[0].polls == polls
        control.close()

    with_smf(body)


def test_the_cli_lists_the_learned_sessions(dataplane: DataPlane, catalog: Catalog) -> None:
    def sauron(*args: str, url: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sauron", "sessions", *args, "--url", url],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
            env={**os.environ, "SAURON_TOKEN": TOKEN},
        )

    def against_agent(smf_url: str) -> list[subprocess.CompletedProcess[str]]:
        config = ControlPlaneConfig(open5gs_smf=[SmfFeedConfig(url=smf_url, interval_s=0.05)])
        control = ControlPlane(catalog, dataplane, config)
        control.open()
        try:
            runtime = AgentRuntime(catalog, ProgramMaps(dataplane), control=control)
            app = create_app(runtime, options=ServiceOptions(token=TOKEN))
            with serve_in_thread(app, runtime) as url:
                deadline = time.monotonic() + 5
                while len(control.registry.sessions) < 2 and time.monotonic() < deadline:
                    time.sleep(0.02)
                return [sauron(url=url), sauron("--slice", "mmtc", "--json", url=url)]
        finally:
            control.close()

    async def body(smf: FakeSmf, url: str) -> list[subprocess.CompletedProcess[str]]:
        smf.items = [pdu_item(7, "mmtc"), pdu_item(8, "embb")]
        return await asyncio.to_thread(against_agent, url)

    table, as_json = with_smf(body)
    assert table.returncode == 0, table.stderr
    rows = table.stdout.splitlines()
    assert rows[0].split()[:3] == ["source", "SEID", "/"]
    assert rows[1].split() == [
        "smf",
        "imsi-001010000000007",
        "10.99.0.8",
        "3-000001",
        "iot",
        "mmtc",
        "snssai",
        "0x000003ef",
        "0x00009007",
    ]
    doc = schemas.PduSessions.model_validate_json(as_json.stdout)
    assert [s.supi for s in doc.sessions] == ["imsi-001010000000007"]
