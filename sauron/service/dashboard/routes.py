"""The dashboard's routes: the page at `/` and its files under /static/.
Neither holds any number (the page asks the API for them), so both stay
open when the API has a token; the page then asks for the token."""

from __future__ import annotations

import time
from pathlib import Path

from aiohttp import web

from sauron.service.problems import NotFound, problem

STATIC = Path(__file__).resolve().parent / "static"
VENDOR = STATIC / "vendor"
#: the front-end library files setup-host copies from web/node_modules
VENDOR_FILES = ("uPlot.iife.min.js", "uPlot.min.css")
STATIC_PREFIX = "/static/"
#: nothing but the agent itself: no script, style, font or request elsewhere
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


def missing_assets() -> list[str]:
    """The vendored files that are not installed."""
    return [name for name in VENDOR_FILES if not (VENDOR / name).is_file()]


async def page(request: web.Request) -> web.StreamResponse:
    missing = missing_assets()
    if missing:
        return problem(
            503,
            "Dashboard not installed",
            f"the dashboard's front-end files are missing ({', '.join(missing)} in {VENDOR}): "
            "run `make setup` (scripts/setup-host installs them from web/package-lock.json)",
        )
    return web.FileResponse(
        STATIC / "index.html",
        headers={
            "Cache-Control": "no-cache",
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
        },
    )


def static_files() -> dict[str, Path]:
    """Every file below static/ by its name relative to it: the only names
    served, so no part of a client's path ever reaches the file system (a
    NUL, a name too long for it, a way out of the folder)."""
    return {
        path.relative_to(STATIC).as_posix(): path for path in STATIC.rglob("*") if path.is_file()
    }


class StaticNames:
    """static_files(), listed once and again only when a name asked for is
    not in the list (the front-end files installed after the agent
    started): no folder walk on the event loop for every asset served."""

    def __init__(self) -> None:
        self.files: dict[str, Path] | None = None
        self.listed_at = 0.0

    def get(self, name: str) -> Path | None:
        if self.files is None or (name not in self.files and self._stale()):
            self.files = static_files()
            self.listed_at = time.monotonic()
        return self.files.get(name)

    def _stale(self) -> bool:
        # a name not found lists again at most once a second: a client
        # asking for names that are not there walks nothing
        return time.monotonic() - self.listed_at > 1.0


STATIC_NAMES = StaticNames()


async def asset(request: web.Request) -> web.StreamResponse:
    """A file below static/, never a path out of it."""
    name = request.match_info["filename"]
    path = STATIC_NAMES.get(name)
    if path is None:
        shown = name if len(name) <= 80 else name[:80] + "..."
        raise NotFound(f"no dashboard file {shown!r}")
    return web.FileResponse(
        path, headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    )


def add_dashboard(app: web.Application) -> None:
    app.router.add_get("/", page)
    app.router.add_get(STATIC_PREFIX + "{filename:.+}", asset)


def is_open_path(path: str) -> bool:
    """The page and its files need no token."""
    return path == "/" or path.startswith(STATIC_PREFIX)
