"""GET /api/v1/security and /api/v1/slices/{name}/security: the frames that
failed each check, summed exactly over the window asked for with their rate
per second of it, the detections overlapping it with their slice's name and
TEIDs in hex, and the checks' state; an unknown slice is a 404 naming the
nearest; with the checks off, the answer says so. Over the agent's runtime
reading a data plane the test feeds (no kernel), its detections from a real
detector behind a stand-in for the agent's Securing (security_agent)."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from security_agent import SCAN_TEIDS, START, Agent, frames

from sauron.service import schemas
from sauron.service.security_docs import CHECKS_OFF


async def get(client: TestClient[Any, Any], path: str) -> Any:
    r = await client.get(path)
    assert r.status == 200, await r.text()
    return await r.json()


def test_every_slice_s_frames_are_summed_over_the_window_with_their_rate() -> None:
    agent = Agent()

    async def body(client: TestClient[Any, Any]) -> None:
        whole = await get(client, "/api/v1/security")
        schemas.SecurityReport.model_validate(whole)
        assert (whole["since"], whole["until"]) == (START, START + 4)
        assert (whole["seconds"], whole["intervals"]) == (4.0, 3)
        assert list(whole["slices"]) == ["unclassified", "embb", "urllc", "mmtc"]
        embb = whole["slices"]["embb"]
        assert embb["frames"] == frames(unknown_teid=15, ue_source_spoofed=1)
        assert embb["per_s"] == {**frames(), "unknown_teid": 15 / 4, "ue_source_spoofed": 1 / 4}
        assert whole["slices"]["urllc"]["frames"] == frames(gtp_in_gtp=2, unknown_peer=4)
        assert whole["slices"]["mmtc"]["frames"] == frames()

        # the last two intervals: the first one's frames are out
        late = await get(client, f"/api/v1/security?since={START + 2}&until={START + 4}")
        assert (late["since"], late["seconds"], late["intervals"]) == (START + 1, 3.0, 2)
        assert late["slices"]["embb"]["frames"] == frames(unknown_teid=10, ue_source_spoofed=1)
        assert late["slices"]["embb"]["per_s"]["unknown_teid"] == 10 / 3
        assert late["slices"]["urllc"]["frames"] == frames(unknown_peer=4)

        # nothing measured in the window
        empty = await get(client, f"/api/v1/security?since={START + 10}")
        assert (empty["since"], empty["seconds"], empty["slices"]) == (None, 0.0, {})

    agent.ask(body)


def test_the_detections_overlapping_the_window_with_slice_names_and_hex_teids() -> None:
    agent = Agent()
    scan, spoof = agent.log.events()

    async def body(client: TestClient[Any, Any]) -> None:
        whole = await get(client, "/api/v1/security")
        assert whole["enabled"] and whole["missing"] == ""
        assert whole["checks"] == agent.log.status()
        first, second = whole["events"]
        assert first == {
            "id": scan.id,
            "kind": "teid_scan",
            "slice": "embb",
            "peer": "10.10.3.7",
            "teids": [f"0x{t:08x}" for t in SCAN_TEIDS],
            "first_seen": START + 0.5,
            "last_seen": START + 0.5 + 4 / 100,
            "count": 15,
            "distinct": 5,
            "ongoing": False,  # quiet for 2 s by the third interval
        }
        assert first["teids"][0] == "0x0f000001"
        assert (second["kind"], second["slice"], second["peer"]) == (
            "spoofing_ue",
            "urllc",
            "10.10.3.100",
        )
        assert (second["teids"], second["count"], second["distinct"]) == (["0x00020011"], 4, 2)
        assert second["id"] == spoof.id and second["ongoing"]

        # a window after the scan ended holds the spoofing UE alone
        late = await get(client, f"/api/v1/security?since={START + 2}")
        assert [e["kind"] for e in late["events"]] == ["spoofing_ue"]
        early = await get(client, f"/api/v1/security?until={START + 1}")
        assert [e["kind"] for e in early["events"]] == ["teid_scan"]

    agent.ask(body)


def test_a_slice_s_route_has_its_own_frames_and_detections() -> None:
    agent = Agent()

    async def body(client: TestClient[Any, Any]) -> None:
        embb = await get(client, f"/api/v1/slices/embb/security?since={START + 2}")
        schemas.SliceSecurityReport.model_validate(embb)
        assert embb["slice"] == "embb" and embb["checks"] == agent.log.status()
        assert embb["frames"] == frames(unknown_teid=10, ue_source_spoofed=1)
        assert embb["per_s"]["ue_source_spoofed"] == 1 / 3
        assert embb["events"] == []  # the scan ended before the window
        assert [
            e["kind"] for e in (await get(client, "/api/v1/slices/embb/security"))["events"]
        ] == ["teid_scan"]
        urllc = await get(client, "/api/v1/slices/urllc/security")
        assert urllc["frames"] == frames(gtp_in_gtp=2, unknown_peer=4)
        assert [(e["kind"], e["slice"]) for e in urllc["events"]] == [("spoofing_ue", "urllc")]
        unclassified = await get(client, "/api/v1/slices/unclassified/security")
        assert unclassified["frames"] == frames() and unclassified["events"] == []

        missing = await client.get("/api/v1/slices/emb/security")
        problem = await missing.json()
        assert missing.status == 404 and missing.content_type == "application/problem+json"
        assert "did you mean 'embb'?" in problem["detail"]
        backwards = await client.get(f"/api/v1/slices/embb/security?since={START}&until=1")
        assert backwards.status == 400 and (await backwards.json())["param"] == "until"
        bad = await client.get("/api/v1/security?since=yesterday")
        assert bad.status == 400 and (await bad.json())["param"] == "since"

    agent.ask(body)


def test_with_the_checks_off_the_answer_says_so() -> None:
    agent = Agent(on=False)
    agent.interval(1, {})

    async def body(client: TestClient[Any, Any]) -> None:
        off = await get(client, "/api/v1/security")
        schemas.SecurityReport.model_validate(off)
        assert (off["enabled"], off["missing"], off["checks"]) == (False, CHECKS_OFF, None)
        assert off["slices"]["embb"] == {"frames": None, "per_s": None}
        assert off["events"] == [] and off["intervals"] == 1
        one = await get(client, "/api/v1/slices/embb/security")
        schemas.SliceSecurityReport.model_validate(one)
        assert (one["enabled"], one["frames"], one["events"]) == (False, None, [])

    agent.ask(body)
