"""OTLP/HTTP (protobuf) metrics to an OpenTelemetry Collector, through the
official exporter (`opentelemetry-exporter-otlp-proto-http`), one export
per interval.

The interval's families are taken in the engine's thread, right after the
tick (that is when its counters, history and SLA state agree); converting,
encoding and sending happen in a thread of the exporter's own, woken from
the event loop, so the tick never waits on the network and a slow
Collector never takes the threads the tick runs in. The official
exporter's retries (doubling from 1 s, on connection errors, 429, 502, 503,
504, within its timeout) are the only ones: while one export is under way
the next interval's data replaces any waiting one, and the replaced ones
are counted. Counters and histograms are cumulative, so the next export
that goes through carries every count; only the gauges of the skipped
intervals are lost."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics.export import MetricExportResult

from sauron.export.exporter import ExporterHealth
from sauron.export.families import Family, engine_families
from sauron.export.otlp.metrics import metrics_data, resource
from sauron.export.otlp.settings import OtlpConfig, endpoint_url, exporter_arguments
from sauron.export.otlp.stats import (
    EXPORTING,
    FAILING,
    NAME,
    STOPPED,
    OtlpStats,
)

if TYPE_CHECKING:
    from sauron.kpi.engine import KpiEngine
    from sauron.kpi.records import Snapshot

log = logging.getLogger(__name__)

#: the official exporter logs why an export failed; its health shows it
EXPORTER_LOGGER = "opentelemetry.exporter.otlp.proto.http.metric_exporter"


class _LastError(logging.Handler):
    """Keeps the official exporter's last error message for the health."""

    def __init__(self, stats: OtlpStats) -> None:
        super().__init__(logging.ERROR)
        self.stats = stats

    def emit(self, record: logging.LogRecord) -> None:
        self.stats.last_error = record.getMessage()


class OtlpExporter:
    """The agent's metrics to `config`'s endpoint (or the environment's),
    as the resource of `node`."""

    name = NAME

    def __init__(self, config: OtlpConfig, node: str) -> None:
        args = exporter_arguments(config)
        if "compression" in args:
            args["compression"] = Compression(args["compression"])
        self.config = config
        self.url = endpoint_url(config)
        self.timeout_s = float(args.get("timeout", config.timeout_s))
        self.stats = OtlpStats()
        self.resource = resource(node, config.service_name, config.resource_attributes)
        self._otlp = OTLPMetricExporter(**args)
        self._errors = _LastError(self.stats)
        #: the cumulative series' origin as OpenTelemetry sees it: the
        #: agent's start, on the engine's clock (set by start)
        self._start_ns = 0
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="otlp")
        self._loop: asyncio.AbstractEventLoop | None = None
        #: the engine whose ticks the snapshots come from (set by start)
        self._engine: KpiEngine | None = None
        self._wake = asyncio.Event()
        self._pending: tuple[list[Family], int] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self, engine: KpiEngine) -> None:
        self._loop, self._engine = asyncio.get_running_loop(), engine
        self._start_ns = round(engine.clock() * 1e9)
        logging.getLogger(EXPORTER_LOGGER).addHandler(self._errors)
        self._sender = asyncio.create_task(self._send_forever(), name="otlp")
        log.info("exporting OTLP metrics", extra={"endpoint": self.url})

    async def stop(self) -> None:
        """Sends what is waiting (within the timeout), then ends: a retry
        still waiting is given up."""
        self._stopping = True
        self._wake.set()
        sender, self._sender = self._sender, None
        if sender is not None:
            await asyncio.wait({sender}, timeout=self.timeout_s + 1)
        self._otlp.shutdown()
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        self._pool.shutdown(wait=False)
        logging.getLogger(EXPORTER_LOGGER).removeHandler(self._errors)
        self.stats.state = STOPPED

    def on_snapshot(self, snapshot: Snapshot) -> None:
        """In the engine's thread: the families as of this tick, handed to
        the event loop."""
        loop, engine = self._loop, self._engine
        if loop is None or engine is None or self._stopping:
            return
        families = engine_families(engine)
        loop.call_soon_threadsafe(self._offer, families, round(snapshot.time * 1e9))

    def _offer(self, families: list[Family], time_ns: int) -> None:
        if self._pending is not None:
            self.stats.intervals_skipped += 1
        self._pending = (families, time_ns)
        self._wake.set()

    async def _send_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            pending, self._pending = self._pending, None
            if pending is not None:
                await loop.run_in_executor(self._pool, self._send, *pending)
            if self._stopping and self._pending is None:
                return

    def _send(self, families: list[Family], time_ns: int) -> None:
        """In the exporter's thread: convert, encode, send (with the
        official exporter's retries)."""
        s = self.stats
        try:
            data = metrics_data(families, self.resource, self._start_ns, time_ns)
            result = self._otlp.export(data, timeout_millis=self.timeout_s * 1000)
        except Exception as exc:  # the next interval tries again
            result = MetricExportResult.FAILURE
            s.last_error = str(exc)
        was = s.state
        if result is MetricExportResult.SUCCESS:
            s.exports_ok += 1
            s.last_success = time.time()
            s.state = EXPORTING
            if was == FAILING:
                log.info("OTLP endpoint takes the exports again", extra={"endpoint": self.url})
        else:
            s.exports_failed += 1
            s.state = FAILING
            s.last_error = s.last_error or "the Collector did not take the export"
            if was != FAILING:
                log.warning(
                    "OTLP export failed; the next interval's carries its counts",
                    extra={"endpoint": self.url, "error": s.last_error},
                )

    def health(self) -> ExporterHealth:
        """Always ok: a Collector away is an outage the next export rides
        out (the counts are cumulative); /readyz shows how it goes."""
        return ExporterHealth(self.name, detail=self.summary())

    def summary(self) -> dict[str, object]:
        s = self.stats
        return {
            "state": s.state,
            "endpoint": self.url,
            "exports_ok": s.exports_ok,
            "exports_failed": s.exports_failed,
            "intervals_skipped": s.intervals_skipped,
            "last_success": s.last_success,
            "last_error": s.last_error,
        }
