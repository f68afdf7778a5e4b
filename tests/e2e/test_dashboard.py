"""The dashboard in a real browser (Debian's chromium, headless) against the
demo testbed: the demo's three slices of traffic through the reference UPF,
the agent as its own process (`sauron run`) on the UPF's N3 and N6. The page
must show the three slices with the same numbers as the REST API for the
same interval, its charts must move, the eMBB card must turn violated
within the SLA rule's window when the UPF starts rate-limiting eMBB (the
demo's own break) and the violation must reach the timeline, and the page
must carry on by itself when the agent restarts. Screenshots are saved in
build/screenshots/ (SAURON_SCREENSHOTS)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from agent_process import REPO, start_agent
from browser import axe_violations, browser_page
from manual_clock import ManualClock
from playwright.sync_api import Page
from served import serve_in_thread
from timeseries import free_port

from sauron.abi.kpis import DIRECTION_LATENCY, DIRECTIONS, SLICE_LATENCY
from sauron.agent.runtime import AgentRuntime, ProgramMaps
from sauron.bpf.loader import DataPlane
from sauron.catalog import Catalog, load_catalog
from sauron.commands.demo import BROKEN, UES
from sauron.service.app import ServiceOptions, create_app
from sauron.service.dashboard import routes
from sauron.testbed.bed import Testbed
from sauron.testbed.sessions import SessionsFile, make_sessions
from sauron.testbed.ue_apps import Traffic

pytestmark = [pytest.mark.kernel, pytest.mark.netns]

INTERVAL_S = 1.0
DASH = "\N{EN DASH}"  # what the page shows for a value not measured
RULE = {"window": 5, "open_bad": 3, "close_good": 3}
#: one snapshot may be cut across the moment the break begins, one more
#: may be needed for the UPF's queue to drain at the new rate
SLACK_INTERVALS = 2

#: every number of a card, read in one go (one task: no render in between)
READ_CARDS = """() => [...document.querySelectorAll('article.card')].map(card => ({
    slice: card.dataset.slice,
    status: card.dataset.status,
    time: card.dataset.time,
    points: Number(card.dataset.points || 0),
    snssai: card.querySelector('[data-field=snssai]').textContent,
    statusText: card.querySelector('[data-field=status]').textContent,
    kpis: Object.fromEntries([...card.querySelectorAll('[data-kpi]')].map(
        s => [s.dataset.kpi, {text: s.textContent, scale: Number(s.dataset.scale || 1)}])),
    targets: [...card.querySelectorAll('tr[data-target]')].map(r => ({
        target: r.dataset.target, ok: r.dataset.ok, scale: Number(r.dataset.scale || 1),
        limit: r.querySelector('[data-field=limit]')?.textContent ?? null,
        value: r.querySelector('[data-field=value]')?.textContent ?? null})),
}))"""


def loosened_catalog(path: Path) -> Path:
    """The default catalog, with eMBB's downlink minimum as its only target
    and the other slices' targets far above what this machine's load can
    cause: so only the injected break can open a violation."""
    doc = yaml.safe_load((REPO / "slices" / "default.yaml").read_text())
    for s in doc["slices"]:
        if s["name"] == "embb":
            s["sla"] = {"min_throughput_mbps": {"downlink": 1}}
        else:
            s["sla"] = {"transit_latency_ms": {"p99": 5000}, "max_loss_ratio": 0.5}
    path.write_text(yaml.safe_dump(doc))
    return path


#: the agent's token: the drill-down's top sessions are per-UE data
TOKEN = "dashboard-test-token-0123"
#: the token in the page's storage before it loads, as the token dialog leaves it
GIVE_TOKEN = f"sessionStorage.setItem('sauron-token', '{TOKEN}')"


def get_json(url: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def pick(doc: Any, path: str) -> Any:
    for key in path.split("."):
        if doc is None:
            return None
        doc = doc[key]
    return doc


def number_in(text: str) -> str:
    found = re.search(r"-?\d+(?:\.\d+)?", text)
    assert found, f"no number in {text!r}"
    return found.group()


def shown_as(text: str, value: float) -> bool:
    """`text` is `value` rounded to the digits it shows."""
    number = number_in(text)
    decimals = len(number.split(".")[1]) if "." in number else 0
    return abs(float(number) - value) <= 0.5 * 10**-decimals + 1e-9 * abs(value)


def assert_cards_equal_rest(url: str, cards: list[dict[str, Any]]) -> int:
    """Each card against the REST point of the same interval; returns how
    many numbers were compared."""
    compared = 0
    every_latency = {f"{d}.{k.name}.p99_ms" for k in DIRECTION_LATENCY for d in DIRECTIONS}
    every_latency |= {f"{k.name}.p99_ms" for k in SLICE_LATENCY}
    for card in cards:
        # a figure for each latency KPI of the table, built from /api/v1/kpis
        assert every_latency <= card["kpis"].keys(), every_latency - card["kpis"].keys()
        t = float(card["time"])
        series = get_json(f"{url}/api/v1/slices/{card['slice']}/kpis?since={t}&until={t}")
        assert len(series["points"]) == 1, (card["slice"], t, series)
        point = series["points"][0]
        for path, shown in card["kpis"].items():
            value = pick(point, path)
            if value is None:
                assert shown["text"] == DASH, (card["slice"], path, shown)
                continue
            assert shown_as(shown["text"], value * shown["scale"]), (
                card["slice"],
                path,
                shown,
                value,
            )
            compared += 1
        checks = {c["target"]: c for c in point["checks"]}
        rows = {r["target"]: r for r in card["targets"] if r["ok"] != "unmeasured"}
        assert rows.keys() == checks.keys(), (card["slice"], rows, checks)
        for target, row in rows.items():
            check = checks[target]
            assert row["ok"] == str(check["ok"]).lower()
            scale = row["scale"]
            assert shown_as(row["limit"], check["limit"] * scale), (row, check)
            assert shown_as(row["value"], check["value"] * scale), (row, check)
            compared += 2
    return compared


def wait_for(page: Page, script: str, timeout_s: float, arg: Any = None) -> Any:
    return page.wait_for_function(script, arg=arg, timeout=timeout_s * 1000).json_value()


def snapshots(page: Page) -> int:
    return int(page.evaluate("() => Number(document.body.dataset.snapshots || 0)"))


@pytest.fixture()
def demo_agent(tmp_path: Path) -> Iterator[tuple[Testbed, Path, str, dict[str, Any]]]:
    """The demo testbed with its traffic running, and the agent's config
    (a fixed port, so that a restarted agent is found at the same place)."""
    catalog = load_catalog(loosened_catalog(tmp_path / "catalog.yaml"))
    sessions = SessionsFile(sessions=make_sessions(catalog, UES, qfi={"urllc": 1, "mmtc": 5}))
    with Testbed(catalog, sessions, tmp_path / "bed") as bed:
        config = tmp_path / "agent.yaml"
        port = free_port()
        token = tmp_path / "api.token"
        token.write_text(TOKEN + "\n")
        token.chmod(0o600)
        config.write_text(
            yaml.safe_dump(
                {
                    "node": "upf-dashboard",
                    "catalog": str(tmp_path / "catalog.yaml"),
                    "interval_s": INTERVAL_S,
                    "interfaces": [
                        {"name": "n3", "role": "n3", "netns": bed.upf},
                        {"name": "n6", "role": "n6", "netns": bed.upf},
                    ],
                    "service": {"host": "127.0.0.1", "port": port, "token_file": str(token)},
                    "sla": RULE,
                }
            )
        )
        traffic = Traffic(bed, sessions)
        traffic.start()
        holder: dict[str, Any] = {}
        try:
            yield bed, config, f"http://127.0.0.1:{port}", holder
        finally:
            agent = holder.get("agent")
            if agent is not None and agent.poll() is None:
                agent.send_signal(signal.SIGTERM)
                agent.communicate(timeout=20)
            traffic.join()
            bed.stop()


def stop_agent(agent: subprocess.Popen[str]) -> None:
    agent.send_signal(signal.SIGTERM)
    out, _ = agent.communicate(timeout=20)
    assert agent.returncode == 0, out


def test_dashboard_shows_the_slices_live_turns_violated_and_survives_a_restart(
    demo_agent: tuple[Testbed, Path, str, dict[str, Any]],
) -> None:
    bed, config, url, holder = demo_agent
    catalog = load_catalog(Path(yaml.safe_load(config.read_text())["catalog"]))
    holder["agent"], served_at = start_agent(config)
    assert served_at == url

    with browser_page() as watched:
        page = watched.page
        page.add_init_script(GIVE_TOKEN)
        page.goto(url + "/")
        # --- the three slices, live
        wait_for(page, "() => Number(document.body.dataset.snapshots || 0) >= 3", 30)
        cards = page.evaluate(READ_CARDS)
        assert [c["slice"] for c in cards] == [s.name for s in catalog.slices]
        for card, s in zip(cards, catalog.slices, strict=True):
            assert card["snssai"] == str(s.spec.snssai)
        assert page.locator("#connection").get_attribute("data-state") == "live"

        # --- the numbers are the API's for the same interval
        compared = assert_cards_equal_rest(url, page.evaluate(READ_CARDS))
        assert compared >= 3 * 10

        # --- the charts move
        before = {c["slice"]: c["points"] for c in page.evaluate(READ_CARDS)}
        chart = page.locator('article[data-slice="embb"] [data-chart="throughput"] canvas')
        first_pixels = chart.screenshot()
        seen = snapshots(page)
        wait_for(page, "n => Number(document.body.dataset.snapshots) >= n + 3", 20, seen)
        after = {c["slice"]: c["points"] for c in page.evaluate(READ_CARDS)}
        assert all(after[name] >= before[name] + 3 for name in before), (before, after)
        assert chart.screenshot() != first_pixels

        # --- eMBB meets its SLA before the break
        wait_for(
            page,
            "() => document.querySelector('article[data-slice=embb]').dataset.status === 'met'",
            20,
        )
        watched.screenshot("dashboard.png", full_page=True)

        # --- the break: violated within the rule's window, and on the timeline
        bed.set_impairments(BROKEN)
        at_break = snapshots(page)
        wait_for(
            page,
            "() => document.querySelector('article[data-slice=embb]').dataset.status === 'violated'",
            (RULE["window"] + SLACK_INTERVALS + 3) * INTERVAL_S,
        )
        took = snapshots(page) - at_break
        assert took <= RULE["window"] + SLACK_INTERVALS, took
        status_text = page.locator('article[data-slice="embb"] [data-field="status"]').inner_text()
        assert "violated" in status_text  # told in words, not by colour alone
        row = page.locator(
            '#violations tr[data-slice="embb"][data-target="min_throughput_mbps.downlink"]'
            '[data-open="true"]'
        )
        row.wait_for(timeout=5000)
        assert "open" in row.inner_text()
        sla = get_json(url + "/api/v1/sla")
        assert [v["target"] for v in sla["events"] if v["open"] and v["slice"] == "embb"] == [
            "min_throughput_mbps.downlink"
        ]
        assert_cards_equal_rest(url, page.evaluate(READ_CARDS))
        watched.screenshot("dashboard-violated.png", full_page=True)

        # --- the drill-down: the slice's own top sessions
        page.locator('article[data-slice="embb"] [data-action="detail"]').click()
        page.locator(
            '#detail[data-slice="embb"] table.sessions tbody tr[data-teid]'
        ).first.wait_for(timeout=5000)
        teids = page.locator("#detail table.sessions tbody tr[data-teid]").evaluate_all(
            "rows => rows.map(r => r.dataset.teid)"
        )
        embb = {
            f"0x{t:08x}"
            for s in bed.sessions.sessions
            if s.slice == "embb"
            for t in (s.ul_teid, s.dl_teid)
        }
        assert teids and set(teids) <= embb, (teids, embb)
        watched.screenshot("dashboard-detail.png", full_page=True)
        page.locator("#detail-close").click()
        assert page.locator("#detail").is_hidden()

        assert watched.errors == [], watched.errors

        # --- the agent restarts: the page notices, waits, and carries on
        connected = int(page.evaluate("() => Number(document.body.dataset.connected)"))
        last_time = float(page.evaluate(READ_CARDS)[0]["time"])
        stop_agent(holder["agent"])
        wait_for(
            page,
            "() => document.querySelector('#connection').dataset.state === 'reconnecting'",
            15,
        )
        watched.screenshot("dashboard-reconnecting.png")
        holder["agent"], _ = start_agent(config)
        wait_for(page, "n => Number(document.body.dataset.connected) > n", 30, connected)
        wait_for(
            page,
            "t => Number(document.querySelector('article.card').dataset.time) > t + 2",
            30,
            last_time,
        )
        assert page.locator("#connection").get_attribute("data-state") == "live"
        assert_cards_equal_rest(url, page.evaluate(READ_CARDS))
        # the violation open when the agent stopped: its end is unknown
        forgotten = page.locator(
            '#violations tr[data-slice="embb"][data-target="min_throughput_mbps.downlink"]'
            '[data-open="false"]'
        )
        assert "agent restarted" in forgotten.first.inner_text()
        # and the restarted agent finds the break again
        wait_for(
            page,
            "() => document.querySelector('article[data-slice=embb]').dataset.status === 'violated'",
            (RULE["window"] + SLACK_INTERVALS + 3) * INTERVAL_S,
        )

        # --- accessible, and nothing loaded from anywhere but the agent
        assert axe_violations(page) == []
        # while the agent was away, its refusals were the only errors
        assert all("ERR_CONNECTION_REFUSED" in e for e in watched.errors), watched.errors
        assert watched.requests and all(r.startswith(url + "/") for r in watched.requests), {
            r for r in watched.requests if not r.startswith(url + "/")
        }

    stop_agent(holder["agent"])


def test_wall_display_is_larger_and_fits(
    demo_agent: tuple[Testbed, Path, str, dict[str, Any]],
) -> None:
    """A wall display (1920x1080, ?wall=1): larger type, the three cards
    side by side, nothing wider than the screen."""
    _, config, url, holder = demo_agent
    holder["agent"], _ = start_agent(config)
    with browser_page(1920, 1080) as watched:
        page = watched.page
        page.add_init_script(GIVE_TOKEN)
        page.goto(url + "/?wall=1")
        wait_for(page, "() => Number(document.body.dataset.snapshots || 0) >= 3", 30)
        size = page.evaluate("() => parseFloat(getComputedStyle(document.body).fontSize)")
        assert size >= 20
        tops = page.locator("article.card").evaluate_all(
            "cards => cards.map(c => Math.round(c.getBoundingClientRect().top))"
        )
        assert len(set(tops)) == 1, tops
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
        assert page.locator("#wall").get_attribute("aria-pressed") == "true"
        watched.screenshot("dashboard-wall.png")
        assert watched.errors == []


# ---------- without the testbed: the token, and a missing install ----------


@pytest.fixture()
def runtime(dataplane: DataPlane, catalog: Catalog) -> AgentRuntime:
    """The agent's runtime over the real programs, not started: ticked by hand."""
    maps = ProgramMaps(dataplane, shortcut=False)
    return AgentRuntime(catalog, maps, clock=ManualClock(4_000_000.0))


def test_page_asks_for_the_token_when_the_agent_has_one(runtime: AgentRuntime) -> None:
    engine = runtime.engine
    engine.tick()
    app = create_app(runtime, options=ServiceOptions(token="s3cret", rate_per_s=0))
    with serve_in_thread(app) as url, browser_page() as watched:
        page = watched.page
        page.goto(url + "/")
        dialog = page.locator("#token-dialog")
        dialog.wait_for(state="visible", timeout=10_000)
        assert page.locator("#connection").get_attribute("data-state") == "auth"
        page.get_by_label("API token").fill("s3cret")
        page.get_by_role("button", name="Use token").click()
        page.locator("article.card").first.wait_for(timeout=10_000)
        assert page.locator("article.card").count() == len(engine.catalog.slices)
        assert page.locator("#connection").get_attribute("data-state") == "live"
        # the 401s before the token was given are the only errors
        assert all("401" in e for e in watched.errors), watched.errors


def test_page_says_what_to_run_when_its_files_are_missing(
    runtime: AgentRuntime, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(routes, "VENDOR", tmp_path)
    app = create_app(runtime)
    with serve_in_thread(app) as url:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url + "/", timeout=5)
        assert refused.value.code == 503
        detail = json.load(refused.value)["detail"]
        assert "make setup" in detail and "uPlot.iife.min.js" in detail


def test_shown_as_reads_rounding_both_ways() -> None:
    """The comparison the browser test relies on can fail."""
    assert shown_as("1.23", 1.234) and shown_as("0.500", 0.5) and shown_as("268", 267.6)
    assert not shown_as("1.23", 1.236) and not shown_as("268", 268.6)
    assert shown_as("≤ 24.1 ms", 24.117) and not shown_as("24.1 ms", 24.16)
