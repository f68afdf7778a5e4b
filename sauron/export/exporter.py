"""The one exporter interface. Everything that takes the agent's
measurements elsewhere (the InfluxDB publisher, the Prometheus exposition,
and the next one: remote write, OTLP) is an `Exporter`; the agent's runtime
(sauron.agent.runtime) holds a list of them, hands each one every snapshot,
starts them before the first interval and stops them, last started first,
after the last. /readyz and /metrics read their health."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sauron.kpi.engine import KpiEngine
    from sauron.kpi.records import Snapshot


@dataclass(frozen=True)
class ExporterHealth:
    """How an exporter is doing, as /readyz shows it."""

    #: the exporter's name (Exporter.name)
    name: str
    #: False: the agent is not ready because of it (a configuration to fix,
    #: not an outage it rides out)
    ok: bool = True
    #: why it is not ok ("" when it is)
    problem: str = ""
    #: what /readyz shows under the exporter's name (None: nothing)
    detail: Mapping[str, object] | None = None


class Exporter(Protocol):
    """`name` names the exporter in /readyz, in the logs and in
    `sauron_listener_failures_total{listener}`: one that raises on a
    snapshot is counted and logged there, and hears the next one all the
    same (sauron.kpi.liveness)."""

    @property
    def name(self) -> str: ...

    async def start(self, engine: KpiEngine) -> None:
        """Begins exporting what `engine` measures; called on the event
        loop before the first interval."""

    async def stop(self) -> None:
        """Ends exporting, after the last interval: what is still queued
        is written or kept (the InfluxDB publisher's final flush)."""

    def on_snapshot(self, snapshot: Snapshot) -> None:
        """Each interval's snapshot, in the engine's thread (never the event
        loop's), right after the engine made it: quick, and never blocking
        on the network. Snapshots before start() may be ignored."""

    def health(self) -> ExporterHealth: ...
