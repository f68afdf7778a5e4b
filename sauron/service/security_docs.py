"""The security documents of the API (schemas.SecurityReport and
SliceSecurityReport): the checks' state, the frames that failed each check
summed over a window of the engine's history with their rate, and the
detections overlapping that window."""

from __future__ import annotations

from typing import Any

from sauron.abi.kpis import SECURITY_KPIS
from sauron.catalog import Catalog
from sauron.kpi.history import add_security
from sauron.kpi.records import Snapshot
from sauron.security.detect import SecurityEvent
from sauron.security.report import event_doc
from sauron.service.view import SecurityLog

#: why there is nothing to show when the agent runs no checks
CHECKS_OFF = "security.enabled is false in the agent's configuration"


def checks_doc(log: SecurityLog | None) -> dict[str, Any]:
    """Whether the checks run, why not, and what they run with."""
    status = None if log is None else log.status()
    enabled = status is not None and bool(status["enabled"])
    return {"enabled": enabled, "missing": "" if enabled else CHECKS_OFF, "checks": status}


def window_doc(snaps: list[Snapshot]) -> dict[str, Any]:
    """The span the snapshots cover: from the start of the first interval
    to the end of the last, and the seconds the rates divide by."""
    return {
        "since": snaps[0].time - snaps[0].interval_s if snaps else None,
        "until": snaps[-1].time if snaps else None,
        "seconds": sum(s.interval_s for s in snaps),
        "intervals": len(snaps),
    }


def counts_doc(snaps: list[Snapshot], name: str) -> dict[str, Any]:
    """A slice's frames per check summed over the snapshots (history's own
    sum, as when it folds intervals), and per second of them; null when
    the checks were off in every one."""
    frames = add_security([s.slices[name].security for s in snaps if name in s.slices])
    if frames is None:
        return {"frames": None, "per_s": None}
    seconds = sum(s.interval_s for s in snaps)
    return {"frames": frames, "per_s": {k.name: frames[k.name] / seconds for k in SECURITY_KPIS}}


def overlapping(
    events: list[SecurityEvent], since: float | None, until: float | None
) -> list[SecurityEvent]:
    """The detections that were under way at some time between `since`
    and `until` (either open-ended)."""
    return [
        e
        for e in events
        if (since is None or e.last_seen >= since) and (until is None or e.first_seen <= until)
    ]


def security_event_doc(e: SecurityEvent, catalog: Catalog) -> dict[str, Any]:
    """A detection as a replay writes it (security.report.event_doc), with
    the agent's number for it and whether it still grows."""
    return {"id": e.id, **event_doc(e, catalog), "ongoing": e.ongoing}


def security_report_doc(
    snaps: list[Snapshot], events: list[SecurityEvent], log: SecurityLog | None, catalog: Catalog
) -> dict[str, Any]:
    """Every slice the snapshots hold (unclassified, then the catalog's)."""
    names = list(snaps[-1].slices) if snaps else []
    return {
        **checks_doc(log),
        **window_doc(snaps),
        "slices": {name: counts_doc(snaps, name) for name in names},
        "events": [security_event_doc(e, catalog) for e in events],
    }


def slice_security_doc(
    name: str,
    snaps: list[Snapshot],
    events: list[SecurityEvent],
    log: SecurityLog | None,
    catalog: Catalog,
) -> dict[str, Any]:
    """One slice's: `events` are its own already."""
    return {
        "slice": name,
        **checks_doc(log),
        **window_doc(snaps),
        **counts_doc(snaps, name),
        "events": [security_event_doc(e, catalog) for e in events],
    }
