"""The remote-write exporter: each snapshot's engine families, rendered as
/metrics renders them (sauron.export.prometheus.render_engine, in the
engine's thread right after its tick), become samples stamped with the
snapshot's time, delivered losslessly (queue, journal, disk spool, retry,
Retry-After: sauron.export.delivery.lossless) by remote write 1.0. The same
series as a scrape, so a dashboard reads both alike; histograms go as their
`_bucket{le}`, `_sum` and `_count` series. A replay keeps each sample's
time: an interval is written once."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from sauron.export.delivery.lossless import LosslessExporter
from sauron.export.delivery.outcome import Writer
from sauron.export.prometheus import render_engine
from sauron.export.remote_write.samples import stamped
from sauron.export.remote_write.settings import RemoteWriteConfig
from sauron.export.remote_write.writer import RemoteWriteWriter

if TYPE_CHECKING:
    from sauron.kpi.engine import KpiEngine
    from sauron.kpi.records import Snapshot


#: the `job` label of every series, unless external_labels say otherwise
JOB = "sauron"


def time_ms(unix_s: float) -> int:
    """A snapshot's time as remote write stamps it (integer milliseconds)."""
    return round(unix_s * 1000)


class RemoteWriteExporter(LosslessExporter[RemoteWriteConfig]):
    """An exporter (sauron.export.exporter): started with the engine whose
    snapshots it writes, it hears each one in the engine's thread."""

    #: in /readyz, the logs and the listener failures
    name = "remote_write"
    refused_problem = "the remote-write receiver refuses the writes"

    def __init__(
        self,
        config: RemoteWriteConfig,
        node: str,
        token: str | None = None,
        password: str | None = None,
        clock: Callable[[], float] = time.time,
        draw: Callable[[], float] = random.random,
        writer_factory: Callable[[], Writer] | None = None,
    ) -> None:
        #: what every series carries besides its own labels
        self.labels = {"instance": node, "job": JOB, **config.external_labels}
        super().__init__(
            config,
            writer_factory or (lambda: RemoteWriteWriter(config, token, password, self.labels)),
            clock,
            draw,
        )

    def lines_of(self, snap: Snapshot, engine: KpiEngine) -> list[str]:
        return stamped(render_engine(engine), time_ms(snap.time))

    def refusal(self) -> tuple[str, dict[str, object]]:
        return (
            "the remote-write receiver refused the writes: check the token or user and "
            "password, and the tenant header",
            {"url": self.config.shown_url},
        )
