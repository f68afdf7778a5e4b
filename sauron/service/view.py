"""What the service reads of the running agent. The service serves a view of
the agent's runtime (sauron.agent.runtime.AgentRuntime is one) and only
reads it: the KPI engine's history, SLA and sessions, the session table,
the health of the tick and of the exporters, the exposition, the diagnoses
and the security detections. It listens to the snapshots for its live
stream, and never starts or stops anything."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from aiohttp import web

if TYPE_CHECKING:
    from sauron.control.plane import ControlPlane
    from sauron.diagnosis.evidence import EvidenceFile
    from sauron.diagnosis.explain import Diagnosed
    from sauron.diagnosis.trigger import Episode
    from sauron.export.exporter import ExporterHealth
    from sauron.kpi.engine import KpiEngine
    from sauron.kpi.records import Snapshot
    from sauron.security.detect import SecurityEvent


class DiagnosisLog(Protocol):
    """What the service reads of the agent's diagnoses
    (sauron.agent.diagnosing.Diagnosing)."""

    @property
    def probe_available(self) -> bool: ...
    @property
    def probe_attached(self) -> bool: ...
    @property
    def probe_missing(self) -> str: ...
    @property
    def evidence_missing(self) -> str: ...
    def history(self, slice_name: str) -> list[Diagnosed]: ...
    def episode(self, slice_name: str) -> Episode | None: ...
    def evidence_files(self, slice_name: str) -> list[EvidenceFile]: ...


class SecurityLog(Protocol):
    """What the service reads of the agent's security checks
    (sauron.agent.securing.Securing)."""

    def events(self) -> list[SecurityEvent]:
        """Every detection kept, oldest first."""

    def status(self) -> dict[str, object]:
        """What the checks run with (schemas.SecurityChecks)."""


class AgentView(Protocol):
    @property
    def engine(self) -> KpiEngine:
        """Read only: catalog, history, SLA tracker, sessions, energy."""

    @property
    def interval_s(self) -> float:
        """The configured interval between ticks (seconds)."""

    @property
    def control(self) -> ControlPlane | None:
        """The session table and its sources (None: none is running)."""

    @property
    def data_path(self) -> dict[str, object] | None:
        """How the agent came by its data path (built, adopted, replaced;
        sauron.agent.datapath), as /readyz shows it; None: not pinned."""

    @property
    def diagnosing(self) -> DiagnosisLog | None:
        """The diagnoses of degraded slices (None: diagnosis is off)."""

    @property
    def security(self) -> SecurityLog | None:
        """The security checks and their detections (None: they are off)."""

    def problems(self) -> list[str]:
        """Why the agent is not measuring (the tick or a listener failing
        interval after interval, a tick that does not return); [] when it is."""

    def exporter_health(self) -> list[ExporterHealth]: ...

    def exposition(self) -> tuple[str, ...]:
        """The Prometheus text of /metrics, in parts: the engine's families
        (the same string until the next tick), then those that move between
        ticks."""

    def listen(self, part: str, listener: Callable[[Snapshot], None]) -> Callable[[], None]:
        """`listener` hears every snapshot (in the engine's thread), its
        failures reported as `part`; returns what ends it."""


#: where the application keeps the view (handlers of the sub-application
#: find it through request.config_dict)
AGENT = web.AppKey[AgentView]("agent")
