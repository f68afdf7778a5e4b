"""The dashboard's drill-down shows a slice's security checks, in a real
browser (Debian's chromium, headless) over the real aiohttp app: the
runtime over a data plane the test feeds (failed checks per slice and kind,
tests/support/security_agent.py), its detections from a real detector
behind a stand-in for the agent's Securing (the kernel's entries and the
maps it sets the checks in are not needed here). eMBB has a limit on
unknown TEIDs a second. The operator opens eMBB and sees each check's
frames over the last minute and their rate as the API gives them, its
TEID scan with the peer and TEIDs, and the limit named in words; the next
interval's frames and a new scan arrive by themselves; URLLC shows its own
spoofing UE and not eMBB's scan. A peer address that holds markup (only the
stand-in can make one) must be shown as text."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from browser import axe_violations, browser_page
from playwright.sync_api import Page
from security_agent import EMBB, SCAN_TEIDS, Agent
from served import serve_in_thread

from sauron.abi import layout
from sauron.abi.kpis import SECURITY_KPIS
from sauron.catalog import Catalog, parse_catalog
from sauron.service.app import ServiceOptions, create_app

REPO = Path(__file__).resolve().parents[2]
TOKEN = "dashboard-security-reader"
GIVE_TOKEN = f"sessionStorage.setItem('sauron-token', '{TOKEN}')"
LIMIT_TARGET = "max_security_events_per_s.unknown_teid"
MARKUP_PEER = "<b>192.0.2.66</b>"
NEW_SCAN = [0x0E000001, 0x0E000002, 0x0E000003, 0x0E000004]

#: the panel, read in one go
READ_PANEL = """() => {
    const section = document.querySelector('#security');
    return {
        slice: section.dataset.slice,
        answers: Number(section.dataset.answers || 0),
        state: section.querySelector('[data-part=security-state]').textContent,
        caption: section.querySelector('.security-counts caption')?.textContent ?? null,
        counts: Object.fromEntries([...section.querySelectorAll('.security-counts tr[data-kind]')]
            .map(r => [r.dataset.kind, {
                title: r.querySelector('th').textContent,
                frames: r.querySelector('[data-field=frames]').textContent,
                per_s: r.querySelector('[data-field=per-s]').textContent}])),
        events: [...section.querySelectorAll('.detections tr[data-id]')].map(r => ({
            id: Number(r.dataset.id), kind: r.dataset.kind, ongoing: r.dataset.ongoing,
            name: r.querySelector('th').textContent,
            peer: r.querySelector('[data-field=peer]').textContent,
            teids: r.querySelector('[data-field=teids]').textContent,
            count: r.querySelector('[data-field=count]').textContent,
            state: r.querySelector('[data-field=state]').textContent})),
        injected: section.querySelectorAll('b').length,
    };
}"""


def limited_catalog() -> Catalog:
    """The default catalog, eMBB with a limit of one unknown TEID a second."""
    doc = yaml.safe_load((REPO / "slices" / "default.yaml").read_text())
    for s in doc["slices"]:
        if s["name"] == "embb":
            s["sla"] = {"max_security_events_per_s": {"unknown_teid": 1}}
    return parse_catalog(doc, "test")


def api_get(url: str, route: str) -> Any:
    request = urllib.request.Request(url + route, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as r:
        return json.load(r)


def answered(page: Page, slice_name: str, after: int) -> dict[str, Any]:
    """The panel once it holds an answer for `slice_name` newer than `after`."""
    page.wait_for_function(
        "([name, n]) => { const s = document.querySelector('#security');"
        " return s.dataset.slice === name && Number(s.dataset.answers || 0) > n; }",
        arg=[slice_name, after],
        timeout=10_000,
    )
    shown: dict[str, Any] = page.evaluate(READ_PANEL)
    return shown


def expected_counts(url: str, name: str, last: float) -> dict[str, dict[str, str]]:
    """What the panel must show: the API's frames and rates of the last
    minute, as the page writes them (its `fixed`: 3 figures)."""
    doc = api_get(url, f"/api/v1/slices/{name}/security?since={last - 60 + 1e-3}")
    shown = {}
    for k in SECURITY_KPIS:
        n, rate = doc["frames"][k.name], doc["per_s"][k.name]
        digits = 0 if rate == 0 else 3 if rate < 1 else 2 if rate < 10 else 1
        shown[k.name] = {
            "title": k.title[0].upper() + k.title[1:],
            "frames": str(n),
            "per_s": f"{rate:.{digits}f}/s",
        }
    return shown


def test_the_drill_down_shows_a_slice_s_security_checks_live() -> None:
    agent = Agent(start=time.time() - 30, catalog=limited_catalog())
    agent.log.scan(
        MARKUP_PEER, EMBB, [0x0D000001, 0x0D000002, 0x0D000003, 0x0D000004], agent.start + 3.6
    )
    with (
        serve_in_thread(create_app(agent.runtime, ServiceOptions(token=TOKEN))) as url,
        browser_page() as watched,
    ):
        page = watched.page
        page.add_init_script(GIVE_TOKEN)
        page.goto(url + "/#slice=embb")
        shown = answered(page, "embb", 0)

        # --- every check's frames and rate, as the API gives them
        last = agent.clock.t
        assert shown["counts"] == expected_counts(url, "embb", last)
        assert shown["counts"]["unknown_teid"]["frames"] == "15"
        assert shown["counts"]["unknown_teid"]["per_s"] == "3.75/s"
        assert shown["caption"].endswith("over the last 4.00 s")
        assert shown["state"].startswith("Checks on every uplink G-PDU: unknown peers counted")

        # --- eMBB's two scans, newest first, the markup peer's as text
        doc = api_get(url, f"/api/v1/slices/embb/security?since={last - 600}")
        assert [e["id"] for e in shown["events"]] == [e["id"] for e in reversed(doc["events"])]
        marked, scan = shown["events"]
        assert (scan["name"], scan["peer"], scan["count"], scan["state"]) == (
            "TEID scan",
            "10.10.3.7",
            "15",
            "ended",
        )
        assert scan["teids"] == " ".join(f"0x{t:08x}" for t in SCAN_TEIDS)
        assert marked["peer"] == MARKUP_PEER and marked["ongoing"] == "true"
        assert shown["injected"] == 0, "a peer from the API was read as markup"

        # --- the limit on unknown TEIDs, named in words with its unit
        row = page.locator(f'#detail tr[data-target="{LIMIT_TARGET}"]')
        assert row.locator("th").inner_text() == "Unknown TEID"
        assert row.locator("[data-field=limit]").inner_text() == "≤ 1.00 frames/s"
        assert row.locator("[data-field=value]").inner_text() == "1.50 frames/s"

        # --- the next interval: new frames and a new scan arrive by themselves
        agent.log.scan("10.10.3.8", EMBB, NEW_SCAN, agent.clock.t + 0.2)
        agent.interval(1, {(EMBB, layout.SEC_GTP_IN_GTP): 6})
        shown = answered(page, "embb", shown["answers"])
        assert shown["counts"] == expected_counts(url, "embb", agent.clock.t)
        assert shown["counts"]["gtp_in_gtp"]["frames"] == "6"
        assert shown["counts"]["gtp_in_gtp"]["per_s"] == "1.20/s"  # over 5 s
        newest = shown["events"][0]
        assert (newest["peer"], newest["ongoing"], newest["state"]) == (
            "10.10.3.8",
            "true",
            "ongoing",
        )
        assert newest["teids"] == " ".join(f"0x{t:08x}" for t in NEW_SCAN)
        watched.screenshot("dashboard-security.png", full_page=True)

        # --- URLLC: its spoofing UE, none of eMBB's scans
        page.goto(url + "/#slice=urllc")
        shown = answered(page, "urllc", 0)
        assert [(e["name"], e["peer"], e["teids"]) for e in shown["events"]] == [
            ("Spoofing UE", "10.10.3.100", "0x00020011")
        ]
        assert shown["counts"]["unknown_peer"]["frames"] == "4"
        assert shown["counts"]["ue_source_spoofed"]["frames"] == "0"
        assert api_get(url, "/api/v1/slices/urllc/security")["events"][0]["slice"] == "urllc"

        assert axe_violations(page) == []
        assert watched.errors == [], watched.errors
