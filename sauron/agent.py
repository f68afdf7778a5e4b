"""`sauron run --config FILE`: the agent of a real deployment. It loads the
programs, classifies by the slice catalog, attaches to the configured
interfaces, runs the KPI engine and the service, and on SIGTERM or SIGINT
stops serving and detaches every program it attached, whatever failed."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from sauron.bpf.loader import DataPlane
from sauron.bpf.maps import read_counters
from sauron.bpf.measurements import TransitExpiry, apply_settings, settings_for
from sauron.catalog import load_catalog
from sauron.config import AgentConfig, read_token
from sauron.engine import History, KpiEngine
from sauron.interfaces import attach_interfaces
from sauron.netns import Attachments
from sauron.rules import program_catalog
from sauron.service.app import ServiceOptions, create_app
from sauron.sla import SlaTracker

log = logging.getLogger(__name__)


def service_options(config: AgentConfig) -> ServiceOptions:
    svc = config.service
    return ServiceOptions(
        token=read_token(svc.token_file) if svc.token_file is not None else None,
        rate_per_s=svc.rate_per_s,
        burst=svc.burst,
    )


async def _serve_until_stopped(
    app: web.Application, config: AgentConfig, ready: Callable[[str], None]
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.service.host, config.service.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        ready(f"http://{host}:{port}")
        await stop.wait()
        log.info("stopping", extra={"reason": "signal"})
    finally:
        await runner.cleanup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def run_agent(config: AgentConfig, ready: Callable[[str], None] = print) -> None:
    """Blocks until SIGTERM/SIGINT; `ready` hears the API's base URL once it
    listens (after every program is attached)."""
    catalog = load_catalog(config.catalog)
    options = service_options(config)  # a bad token file fails before anything is attached
    attachments = Attachments()
    dp = DataPlane()
    with dp:
        try:
            program_catalog(dp, catalog)
            apply_settings(dp, settings_for(catalog))
            attach_interfaces(dp, config.interfaces, attachments)
            expiry = TransitExpiry(dp)
            engine = KpiEngine(
                catalog,
                lambda: read_counters(dp, expiry),
                history=History(config.history.recent, config.history.fold, config.history.folded),
                sla=SlaTracker(
                    catalog,
                    window=config.sla.window,
                    open_bad=config.sla.open_bad,
                    close_good=config.sla.close_good,
                ),
            )
            app = create_app(engine, interval=config.interval_s, options=options)
            asyncio.run(_serve_until_stopped(app, config, ready))
        finally:
            attachments.detach_all()


def describe(config: AgentConfig, path: Path) -> str:
    links = ", ".join(f"{i.name} ({i.role})" for i in config.interfaces)
    return f"{path}: node {config.node}, interfaces {links}, every {config.interval_s:g} s"
