"""The InfluxDB publisher: each snapshot becomes line-protocol points (in
the engine's thread), delivered losslessly (queue, journal, disk spool,
retry, Retry-After: sauron.export.delivery.lossless) by the InfluxDB
writer. Points keep their snapshot's timestamp, so a replay overwrites
rather than adds."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from sauron.export.delivery.lossless import (
    PUBLISHING,
    REJECTED,
    SPOOLING,
    STARTING,
    STATES,
    STOPPED,
    LosslessExporter,
    retry_delay,
)
from sauron.export.delivery.outcome import Writer
from sauron.export.influx.points import (
    diagnosis_points,
    session_points,
    snapshot_points,
    time_ns,
    violation_point,
)
from sauron.export.influx.settings import InfluxConfig
from sauron.export.influx.writer import InfluxWriter

if TYPE_CHECKING:
    from sauron.diagnosis.explain import Diagnosed
    from sauron.kpi.engine import KpiEngine
    from sauron.kpi.records import Snapshot

__all__ = [
    "PUBLISHING",
    "REJECTED",
    "SPOOLING",
    "STARTING",
    "STATES",
    "STOPPED",
    "Publisher",
    "retry_delay",
]


class Publisher(LosslessExporter[InfluxConfig]):
    """An exporter (sauron.export.exporter): started with the engine whose
    snapshots it publishes, it hears each one in the engine's thread.

    `diagnoses(slice)`, when the agent diagnoses, gives a slice's diagnoses
    made since it was last asked (sauron.diagnosis.cursor over the agent's
    history): each is written once, as `sauron_diagnosis` points, with the
    snapshot it came in."""

    #: in /readyz, the logs and the listener failures
    name = "publisher"
    refused_problem = "the InfluxDB server refuses the writes"

    def __init__(
        self,
        config: InfluxConfig,
        node: str,
        token: str | None,
        clock: Callable[[], float] = time.time,
        draw: Callable[[], float] = random.random,
        writer_factory: Callable[[], Writer] | None = None,
    ) -> None:
        self.node = node
        self.diagnoses: Callable[[str], Sequence[Diagnosed]] | None = None
        super().__init__(
            config, writer_factory or (lambda: InfluxWriter(config, token)), clock, draw
        )

    def lines_of(self, snap: Snapshot, engine: KpiEngine) -> list[str]:
        return self.points_of(snap, engine)

    def points_of(self, snap: Snapshot, engine: KpiEngine) -> list[str]:
        """The points of one snapshot, with the SLA changes, top sessions
        and new diagnoses of the engine's latest interval."""
        opened = {name: len(engine.sla.open_violations(name)) for name in snap.slices}
        lines = snapshot_points(self.node, snap, opened)
        for change, v in engine.sla.changes:
            kpis = snap.slices.get(v.slice_name)
            lines.append(violation_point(self.node, v, change, kpis.snssai if kpis else ""))
        if self.config.top_sessions:
            t = time_ns(snap.time)
            for kpis in snap.slices.values():
                top = engine.sessions.teids.top.get(kpis.slice_id, [])
                lines += session_points(self.node, kpis, top[: self.config.top_sessions], t)
        if self.diagnoses is not None:
            for name, kpis in snap.slices.items():
                for diagnosed in self.diagnoses(name):
                    lines += diagnosis_points(self.node, diagnosed, kpis.snssai)
        return lines

    def refusal(self) -> tuple[str, dict[str, object]]:
        return "the server refused the writes: check the token, org and bucket", {
            "org": self.config.org,
            "bucket": self.config.bucket,
        }

    def where(self) -> dict[str, object]:
        return {"url": self.config.shown_url, "bucket": self.config.bucket}
