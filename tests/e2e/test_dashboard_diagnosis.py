"""The dashboard's drill-down shows why a slice is late, in a real browser
(Debian's chromium, headless) over the real aiohttp app: the runtime over
the real programs with the agent's diagnosis loop and the real diagnosis
probe watching a "UPF" worker that shares its CPU with a named hog
(tests/support/degraded_slice.py; eMBB's transit p99 target is set below
what any packet takes, as in tests/e2e/test_diagnosis.py). The operator
opens a healthy slice and sees no diagnosis; opens eMBB, sees it degraded
with the probe attached, then the next interval's diagnosis arrive by
itself: its factors and shares and the hog's name and pid as the API gives
them, the earlier diagnosis below, and the open violation's sentence. The
hog's name holds markup, which the page must show as text."""

from __future__ import annotations

import json
import os
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import axe_violations, browser_page
from cpu_contention import CPU
from degraded_slice import degraded_embb, send
from playwright.sync_api import Page
from served import serve_in_thread

from sauron.bpf.loader import DataPlane
from sauron.diagnosis.probe import DiagnosisProbe, probe_in
from sauron.service import schemas
from sauron.service.app import ServiceOptions, create_app

pytestmark = [pytest.mark.kernel]

TOKEN = "dashboard-diagnosis-reader"
#: the token in the page's storage before it loads, as the token dialog leaves it
GIVE_TOKEN = f"sessionStorage.setItem('sauron-token', '{TOKEN}')"
TARGET = "transit_latency_ms.p99.uplink"
#: the watched function's name (diagnosis.watch), markup in it too
WORKER_NAME = "upf <i>worker</i> &amp;"

#: what the drill-down's diagnosis shows, read in one go
READ_DIAGNOSIS = """() => {
    const section = document.querySelector('#diagnosis');
    const block = (box) => box && ({
        summary: box.querySelector('[data-field=summary]').textContent,
        failing: box.querySelector('[data-field=failing]').textContent,
        factors: [...box.querySelectorAll('tr[data-factor]')].map(r => ({
            name: r.dataset.factor, share: r.querySelector('[data-field=share]').textContent,
            figure: r.querySelector('[data-field=figure]').textContent,
            held: r.querySelector('[data-field=held-by]')?.textContent ?? null,
            comm: r.querySelector('[data-field=held-by]')?.dataset.comm ?? null})),
        unmeasured: [...box.querySelectorAll('ul.unmeasured li')].map(li => li.textContent),
    });
    return {
        hidden: section.hidden,
        slice: section.dataset.slice,
        state: section.querySelector('[data-part=diagnosis-state]').textContent,
        degraded: section.querySelector('[data-part=diagnosis-state]').dataset.degraded,
        targets: [...section.querySelectorAll('[data-part=diagnosis-state] [data-target]')]
            .map(s => s.dataset.target),
        attached: section.querySelector('[data-field=probe]')?.dataset.attached ?? null,
        latest: block(section.querySelector('[data-part=diagnosis-latest] .diagnosed')),
        past: [...section.querySelectorAll('[data-part=diagnosis-past] details')].map(d => ({
            summary: d.querySelector('summary').textContent, time: Number(d.dataset.time)})),
        open: [...section.querySelectorAll('.open-violation')].map(p => p.textContent),
        evidence: [...section.querySelectorAll('ul.evidence li')].map(li => li.dataset.path),
        injected: section.querySelectorAll('b, i').length,
    };
}"""


@pytest.fixture(scope="module")
def probe() -> Iterator[DiagnosisProbe]:
    with probe_in(Path("/sys/fs/bpf") / f"sauron-test-diag-dash-{os.getpid()}") as p:
        yield p


def api_get(url: str, route: str) -> Any:
    request = urllib.request.Request(url + route, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as r:
        return json.load(r)


def answers(page: Page) -> int:
    """How many diagnosis reports the drill-down has received."""
    return int(
        page.evaluate("() => Number(document.querySelector('#diagnosis').dataset.answers || 0)")
    )


def next_answer(page: Page, after: int) -> None:
    page.wait_for_function(
        "n => Number(document.querySelector('#diagnosis').dataset.answers || 0) > n",
        arg=after,
        timeout=10_000,
    )


def snapshots(page: Page) -> int:
    return int(page.evaluate("() => Number(document.body.dataset.snapshots || 0)"))


def test_the_drill_down_shows_a_slice_s_diagnoses_live(
    dataplane: DataPlane, probe: DiagnosisProbe, tmp_path: Path
) -> None:
    # TASK_COMM_LEN: 15 characters at most, markup and an ampersand among them
    hog_name = f"<b>{uuid.uuid4().hex[:4]}</b>&"
    with (
        degraded_embb(
            dataplane,
            probe,
            hog_name,
            start=time.time(),
            worker_name=WORKER_NAME,
            evidence_dir=tmp_path / "evidence",
        ) as degraded,
        serve_in_thread(create_app(degraded.runtime, ServiceOptions(token=TOKEN))) as url,
        browser_page() as watched,
    ):
        page = watched.page
        page.add_init_script(GIVE_TOKEN)
        degraded.tick()
        page.goto(url + "/#slice=urllc")
        page.wait_for_function("() => Number(document.body.dataset.connected || 0) >= 1")

        # --- a healthy slice: its drill-down shows no diagnosis
        for _ in range(2):
            seen, asked = snapshots(page), answers(page)
            degraded.tick()
            page.wait_for_function("n => Number(document.body.dataset.snapshots) > n", arg=seen)
            next_answer(page, asked)
        shown = page.evaluate(READ_DIAGNOSIS)
        assert shown["slice"] == "urllc" and shown["hidden"], shown
        assert page.locator("#diagnosis").is_hidden()
        assert api_get(url, "/api/v1/slices/urllc/diagnosis")["diagnoses"] == []

        # --- eMBB from its card, still healthy: nothing shown either
        asked = answers(page)
        page.locator('article[data-slice="embb"] [data-action="detail"]').click()
        next_answer(page, asked)
        shown = page.evaluate(READ_DIAGNOSIS)
        assert shown["slice"] == "embb" and shown["hidden"], shown
        assert watched.errors == [], watched.errors

        # --- its transit p99 fails: degraded, the probe attached, the first
        # diagnosis from the kernel's counters alone
        send(dataplane, 50, 0)
        degraded.tick()
        page.wait_for_function(
            "() => document.querySelector('#diagnosis').dataset.diagnoses === '1'", timeout=10_000
        )
        report = schemas.DiagnosisReport.model_validate(
            api_get(url, "/api/v1/slices/embb/diagnosis")
        )
        assert report.episode is not None and report.probe is not None and report.probe.attached
        shown = page.evaluate(READ_DIAGNOSIS)
        assert not shown["hidden"] and shown["degraded"] == "true", shown
        assert shown["targets"] == report.episode.targets == [TARGET]
        assert shown["attached"] == "true" and "Probe attached" in shown["state"]
        (first,) = report.diagnoses
        assert shown["latest"]["summary"] == first.summary
        assert shown["latest"]["unmeasured"] == [f"Not measured: {u}" for u in first.unmeasured]
        assert shown["past"] == []

        # --- the next interval, the worker behind the hog: the drill-down
        # updates by itself, the newest diagnosis first
        send(dataplane, 50, 50)
        time.sleep(1.0)  # the worker waits behind the hog meanwhile
        degraded.tick()
        page.wait_for_function(
            "() => document.querySelector('#diagnosis').dataset.diagnoses === '2'", timeout=10_000
        )
        report = schemas.DiagnosisReport.model_validate(
            api_get(url, "/api/v1/slices/embb/diagnosis")
        )
        newest = report.diagnoses[0]
        shown = page.evaluate(READ_DIAGNOSIS)
        latest = shown["latest"]
        assert latest["summary"] == newest.summary
        assert "limit 0.000100 ms" in latest["failing"]  # three figures, not a false zero
        # the factors in the API's order (by share), each with its share
        assert [f["name"] for f in latest["factors"]] == [f.name for f in newest.factors]
        assert [f["share"] for f in latest["factors"]] == [
            f"{f.share * 100:.1f} %" for f in newest.factors
        ]
        assert [f["figure"] for f in latest["factors"]] == [f.figure for f in newest.factors]
        assert any(WORKER_NAME in f["figure"] for f in latest["factors"])
        wait = next(f for f in newest.factors if f.name == "run_queue_wait")
        held = wait.evidence["held_by"]
        assert (held["comm"], held["pid"], held["cpu"]) == (hog_name, degraded.hog.pid, CPU)
        (row,) = [f for f in latest["factors"] if f["name"] == "run_queue_wait"]
        assert row["comm"] == hog_name
        assert f"{hog_name} (pid {degraded.hog.pid}) on CPU {CPU}" in row["held"]
        assert shown["injected"] == 0, "a name from the API was read as markup"
        # the earlier diagnosis below it
        (earlier,) = shown["past"]
        assert earlier["time"] == first.time and earlier["summary"].endswith(f": {first.summary}")

        # --- a third failed check opens the violation: its sentence is shown
        # on it, in the drill-down and in the violations table
        send(dataplane, 50, 100)
        degraded.tick()
        (event,) = schemas.SlaReport.model_validate(api_get(url, "/api/v1/sla")).events
        assert event.open and event.diagnosis
        cell = page.locator(
            f'#violations tr[data-slice="embb"][data-target="{TARGET}"][data-open="true"] '
            "[data-field=diagnosis]"
        )
        cell.wait_for(timeout=10_000)
        page.wait_for_function(
            "s => document.querySelector('#diagnosis .open-violation')?.textContent.endsWith(s)",
            arg=event.diagnosis,
            timeout=10_000,
        )
        assert cell.inner_text() == event.diagnosis
        # and its pcapng, named for tshark
        assert event.evidence is not None
        page.wait_for_function(
            "p => [...document.querySelectorAll('#diagnosis ul.evidence li')]"
            ".some(li => li.dataset.path === p)",
            arg=event.evidence,
            timeout=10_000,
        )
        assert page.evaluate(READ_DIAGNOSIS)["evidence"] == [event.evidence]
        watched.screenshot("dashboard-diagnosis.png", full_page=True)

        assert axe_violations(page) == []
        assert watched.errors == [], watched.errors
