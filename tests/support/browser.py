"""A real headless browser for the dashboard tests: Debian's chromium driven
by playwright (no browser download), with every console error, page error,
refused CSP rule and request the page made kept for the tests to check."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
#: axe-core, installed by setup-host from web/package-lock.json
AXE = REPO / "web" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = Path(os.environ.get("SAURON_SCREENSHOTS", REPO / "build" / "screenshots"))


@dataclass
class Watched:
    page: Page
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def screenshot(self, name: str, **kwargs: object) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / name
        self.page.screenshot(path=str(path), **kwargs)  # type: ignore[arg-type]
        return path


@contextmanager
def browser_page(width: int = 1366, height: int = 900) -> Iterator[Watched]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            watched = Watched(page)
            page.on(
                "console",
                lambda m: watched.errors.append(m.text) if m.type == "error" else None,
            )
            page.on("pageerror", lambda e: watched.errors.append(f"page error: {e}"))
            page.on("request", lambda r: watched.requests.append(r.url))
            yield watched
        finally:
            browser.close()


def axe_violations(page: Page) -> list[dict[str, object]]:
    """axe-core's WCAG 2 A/AA rules on the page as it stands (evaluated
    through the driver: the page's own policy refuses inline scripts)."""
    page.evaluate(AXE.read_text())
    result: dict[str, list[dict[str, object]]] = page.evaluate(
        """async () => await axe.run(document, {
            runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}
        })"""
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["html"] for n in v["nodes"]][:3]}  # type: ignore[index, union-attr]
        for v in result["violations"]
    ]
