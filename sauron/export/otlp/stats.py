"""The OTLP exporter's counters and states, apart from the exporter: the
Prometheus exposition reports them, and an agent whose OTLP is off must
not load the OpenTelemetry SDK and protobuf (about 10 MB) to do so."""

from __future__ import annotations

from dataclasses import dataclass

STARTING, EXPORTING, FAILING, STOPPED = "starting", "exporting", "failing", "stopped"
STATES = (STARTING, EXPORTING, FAILING, STOPPED)
#: the exporter's name among the runtime's exporters
NAME = "otlp"


@dataclass
class OtlpStats:
    state: str = STARTING
    exports_ok: int = 0
    exports_failed: int = 0
    #: intervals replaced by a later one while an export was under way
    intervals_skipped: int = 0
    last_success: float | None = None
    last_error: str = ""
