"""`sauron replay`: every frame of a capture through the real programs with
BPF_PROG_TEST_RUN, then the per-slice, per-TEID, per-QFI and anomaly counts.

Frames run through one attach point's program (N3 ingress by default) with
the direction decided per frame, since a capture usually holds both
directions of a link: by the capture's PFCP, the PDU Session Container, the
addresses seen, else the kernel's AUTO (sauron/commands/replay_direction.py); the
report's `direction` tells how each frame was decided.

PFCP in the capture is learned as it goes by: each frame is classified with
the sessions established before it (and not yet deleted), as the agent
would have classified it live.
"""

from __future__ import annotations

import ctypes
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sauron.abi import layout, points
from sauron.bpf import libbpf
from sauron.bpf.loader import DataPlane
from sauron.bpf.maps import read_counters
from sauron.bpf.measurements import MeasureSettings, apply_settings, read_sequences
from sauron.bpf.rules import program_catalog
from sauron.bpf.security import IpAddress, IpNetwork, drain_seen, read_counts, set_checks
from sauron.catalog import Catalog
from sauron.commands.capture import read_frames
from sauron.commands.replay_direction import (
    DECIDING_METHODS,
    FIXED,
    KERNEL,
    Decision,
    DirectionTally,
    FrameDirections,
    PfcpTunnelEnds,
    SeenAddresses,
    summary_line,
)
from sauron.control.pfcp_learner import PfcpLearner
from sauron.control.record import ControlSession
from sauron.control.registry import SessionRegistry
from sauron.control.rules import LearnedRules
from sauron.kpi.sessions import ue_address_text
from sauron.pfcp.datagrams import NotPfcp, from_ethernet
from sauron.security.detect import Observation, detect, observation
from sauron.security.report import event_doc, security_doc
from sauron.security.thresholds import SCAN_THRESHOLD, SPOOF_THRESHOLD

log = logging.getLogger(__name__)

#: BPF_PROG_TEST_RUN takes at most a page less head and tail room; the
#: programs read headers only, so longer frames run cut to this length.
TEST_RUN_MAX_FRAME = 3500
#: the kernel refuses frames shorter than an Ethernet header
TEST_RUN_MIN_FRAME = 14

GTPU_MESSAGE_KEYS = (
    "g_pdu",
    "echo_request",
    "echo_response",
    "end_marker",
    "error_indication",
    "other",
)


@dataclass
class ReplayOptions:
    point: int = layout.POINT_N3_INGRESS
    #: the hook whose program runs the frames (None: the point's default;
    #: a receiving side has an XDP and a TC program, counting alike)
    hook: str | None = None
    #: AUTO: decided per frame (sauron/commands/replay_direction.py); any other mode
    #: runs every frame in it
    direction_mode: int = layout.DIRMODE_AUTO
    #: learn sessions from the capture's PFCP
    learn: bool = True
    #: told the frames run so far, every PROGRESS_EVERY frames
    progress: Callable[[int], None] | None = None
    #: the security checks (sauron.bpf.security) and their detections
    security: bool = True
    #: the gNBs and peer UPFs known besides the far tunnel ends the capture's
    #: PFCP names; with neither, no outer source is counted as unknown
    peers: tuple[IpAddress, ...] = ()
    #: the core's own prefixes: uplink traffic into them is counted
    protected: tuple[IpNetwork, ...] = ()
    scan_threshold: int = SCAN_THRESHOLD
    spoof_threshold: int = SPOOF_THRESHOLD


#: how often a long replay reports its progress, in frames
PROGRESS_EVERY = 4096

#: each category of frame the program ran on, as the human table names it
#: (the events of sauron_shared.h, SAURON_EV_*)
FRAME_KINDS = {
    "gtpu": "GTP-U",
    "ip_not_gtpu": "IP but not GTP-U",
    "ip": "plain IP (N6 side)",
    "not_ip": "not IP",
    "outer_fragment": "outer IP fragments (no UDP header)",
}


def replay_capture(
    path: Path | str,
    catalog: Catalog,
    dataplane: DataPlane | None = None,
    options: ReplayOptions | None = None,
) -> dict[str, Any]:
    """Runs the capture and returns the report `sauron replay --json` prints."""
    options = options or ReplayOptions()
    own = dataplane is None
    dp = dataplane or DataPlane()
    try:
        dp.reset_counters()
        program_catalog(dp, catalog)
        dp.set_direction_mode(options.point, options.direction_mode)
        # timings mean nothing in a replay; sequence numbers do
        apply_settings(dp, MeasureSettings(transit=False, rtt=False, retransmissions=False))
        prog_fd = dp.program_fd(options.point, hook=options.hook)
        passes = dp.pass_verdict(options.point, hook=options.hook)
        registry = SessionRegistry(catalog, LearnedRules(dp, catalog), clock=lambda: at)
        tunnel_ends = PfcpTunnelEnds()
        far_ends: set[IpAddress] = set()

        def check_peers() -> None:
            if options.security:
                known = {*options.peers, *far_ends}
                set_checks(dp, True, known if known else None, options.protected)

        check_peers()

        def changed(session: ControlSession) -> None:
            registry.upsert(session)
            tunnel_ends.upsert(session)
            ends = {
                ipaddress.ip_address(t.address)
                for t in session.tunnels
                if not t.local and t.address
            }
            if not ends <= far_ends:
                far_ends.update(ends)
                check_peers()

        def removed(session: ControlSession) -> None:
            registry.remove(session)
            tunnel_ends.remove(session)

        learner = PfcpLearner(changed, removed, clock=lambda: at)
        per_frame = (
            options.direction_mode == layout.DIRMODE_AUTO and points.point(options.point).gtpu
        )
        # a fixed mode, or AUTO where the program reads no GTP-U (N6), holds
        # for every frame
        given = Decision(
            options.direction_mode,
            KERNEL if options.direction_mode == layout.DIRMODE_AUTO else FIXED,
        )
        directions: FrameDirections | None = None
        if per_frame:
            seen = SeenAddresses.of_frames(f.data for f in read_frames(path))
            directions = FrameDirections(tunnel_ends, seen)
        tally = DirectionTally(DECIDING_METHODS if per_frame else [given.method])
        mode = options.direction_mode
        counted = _CountedPerDirection(dp, options.point, catalog.slice_rows)
        checked = _SecurityPerFrame(dp, catalog.slice_rows) if options.security else None
        observations: list[Observation] = []
        at = 0.0
        frames = cut = too_short = 0
        for frame in read_frames(path):
            frames += 1
            if options.progress is not None and frames % PROGRESS_EVERY == 0:
                options.progress(frames)
            at = frame.time
            data = frame.data
            if options.learn:
                _learn(learner, data, at)
                registry.flush()
            if len(data) < TEST_RUN_MIN_FRAME:
                too_short += 1
                continue
            if len(data) > TEST_RUN_MAX_FRAME:
                cut += 1
                data = data[:TEST_RUN_MAX_FRAME]
            decision = directions.decide(data) if directions is not None else given
            if decision.mode != mode:
                mode = decision.mode
                dp.set_direction_mode(options.point, mode)
            result = libbpf.test_run(prog_fd, data)
            if result.retval != passes:
                raise RuntimeError(f"frame {frame.number}: program returned {result.retval}")
            direction = counted.direction_of_last_frame()
            if direction is not None:
                tally.count(frame.number, direction, decision.method)
            if checked is not None and checked.grew():
                observations += (observation(seen, at, at) for seen in drain_seen(dp))
        if mode != options.direction_mode:
            dp.set_direction_mode(options.point, options.direction_mode)
        if checked is not None:
            counts = read_counts(dp, catalog.slice_rows)
            set_checks(dp, False)
        counters = read_counters(dp)
        report = _report(str(path), catalog, options.point, counters, frames, cut, too_short)
        report["direction"] = tally.doc()
        if checked is not None:
            report["security"] = security_doc(counts, catalog)
            report["security_events"] = [
                event_doc(e, catalog)
                for e in detect(observations, options.scan_threshold, options.spoof_threshold)
            ]
        report["sessions"] = registry.docs(ended=True)
        report["pfcp"] = {
            "messages": dict(sorted(learner.messages.items())),
            "rejects": dict(sorted(learner.rejects.items())),
            "rules": dict(sorted(registry.rules.counts.items())) if registry.rules else {},
        }
        report["sequence"] = [
            {
                "teid": f"0x{r.teid:08x}",
                "direction": layout.DIRECTION_NAMES[r.direction],
                "receiver": r.receiver,
                "slice": catalog.name_of(r.slice_id),
                "received": r.received,
                "lost": r.lost,
                "reordered": r.reordered,
                "duplicates": r.duplicates,
            }
            for r in read_sequences(dp)
        ]
        return report
    finally:
        if own:
            dp.close()


class _SecurityPerFrame:
    """Whether the last frame failed a security check, read from the mapped
    security counters (the entries a detection needs are then drained)."""

    def __init__(self, dp: DataPlane, slice_rows: int) -> None:
        self.array = dp.mapped("security_stats", ctypes.c_uint64)
        self.rows = slice_rows * layout.SEC_KINDS
        self.last = self._read()

    def _read(self) -> np.ndarray:
        summed: np.ndarray = self.array.words(self.rows)[:, :, 0].sum(axis=0, dtype=np.uint64)
        return summed

    def grew(self) -> bool:
        now = self._read()
        grown = bool((now != self.last).any())
        self.last = now
        return grown


class _CountedPerDirection:
    """Frames the point's program counted per direction, read from the
    mapped slice counters after each frame: how the program itself took a
    frame (what the kernel's AUTO chose, or none for a frame it did not
    count as GTP-U or IP)."""

    def __init__(self, dp: DataPlane, point: int, slice_rows: int) -> None:
        self.array = dp.mapped("slice_stats", layout.SliceStats)
        self.point = point
        self.rows = slice_rows * layout.SLICE_STATS_ROWS
        self.last = self._read()

    def _read(self) -> np.ndarray:
        packets = self.array.words(self.rows)[:, :, layout.SliceStats.packets.offset // 8]
        per_row = packets.sum(axis=0, dtype=np.uint64)
        per_direction: np.ndarray = per_row.reshape(-1, layout.POINTS, layout.DIRS)[
            :, self.point
        ].sum(axis=0, dtype=np.uint64)
        return per_direction

    def direction_of_last_frame(self) -> str | None:
        now = self._read()
        grown = [d for d in layout.DIRECTION_NAMES if now[d] != self.last[d]]
        self.last = now
        return layout.DIRECTION_NAMES[grown[0]] if len(grown) == 1 else None


def _learn(learner: PfcpLearner, frame: bytes, at: float) -> None:
    try:
        datagram = from_ethernet(frame)
    except NotPfcp as exc:
        if exc.reason != "other":
            learner.rejects[exc.reason] += 1
        return
    learner.feed(datagram.payload, datagram.src, datagram.dst, at)


def _report(
    path: str, catalog: Catalog, point: int, counters: Any, frames: int, cut: int, too_short: int
) -> dict[str, Any]:
    message_types = dict.fromkeys(GTPU_MESSAGE_KEYS, 0)
    slices: dict[str, Any] = {}
    slice_ids = [0, *[s.id for s in catalog.slices]]
    for sid in slice_ids:
        entry: dict[str, Any] = {"id": sid}
        spec = catalog.by_id().get(sid)
        if spec:
            entry["sst"] = spec.spec.snssai.sst
            entry["sd"] = None if spec.spec.snssai.sd is None else f"{spec.spec.snssai.sd:06x}"
        for d, dname in layout.DIRECTION_NAMES.items():
            st = counters.slice(point, sid, d)
            entry[dname] = {
                "packets": int(st.packets),
                "bytes": int(st.bytes),
                "inner_bytes": int(st.inner_bytes),
                "malformed": int(st.malformed),
            }
            for kind, kname in layout.MSG_KIND_NAMES.items():
                if kname in message_types:
                    message_types[kname] += int(st.msg[kind])
        slices[catalog.name_of(sid)] = entry

    qfi: dict[str, int] = {}
    for sid in slice_ids:
        for q in range(layout.MAX_QFI):
            for d in layout.DIRECTION_NAMES:
                n = int(counters.qfi(point, sid, q, d).packets)
                if n:
                    qfi[str(q)] = qfi.get(str(q), 0) + n

    teids: dict[str, int] = {}
    teid_slices: dict[str, str] = {}
    for s in counters.teids:
        key = f"0x{counters.teid_of(s):08x}"
        teids[key] = s.packets[0] + s.packets[1]
        teid_slices[key] = catalog.name_of(s.slice_id)
    ues = {
        ue_address_text(s.ue_addr): {
            "slice": catalog.name_of(s.slice_id),
            "packets": s.packets[0] + s.packets[1],
        }
        for s in counters.teids
        if s.ue_addr is not None
    }
    anomaly_counts = {name: counters.event(point, ev) for ev, name in layout.ANOMALY_NAMES.items()}
    anomalies = {name: n for name, n in anomaly_counts.items() if n}
    events = {name: counters.event(point, ev) for ev, name in layout.EVENT_NAMES.items()}
    return {
        "capture": path,
        "point": layout.POINT_NAMES[point],
        "frames": frames,
        "gtpu_frames": events["gtpu"],
        "message_types": message_types,
        "teids": dict(sorted(teids.items())),
        "teid_slices": dict(sorted(teid_slices.items())),
        "qfi": dict(sorted(qfi.items(), key=lambda kv: int(kv[0]))),
        "slices": slices,
        "ue_addresses": dict(sorted(ues.items())),
        "anomalies": anomalies,
        "events": events,
        "replay": {
            "frames_cut_to_test_run_limit": cut,
            "frames_shorter_than_ethernet": too_short,
            "teid_table_full": len(counters.teids) >= layout.TEID_STATS_ENTRIES,
        },
    }


def _security_lines(counts: dict[str, dict[str, int]], events: list[dict[str, Any]]) -> list[str]:
    if not counts:
        return ["security: no uplink G-PDU failed a check"]
    lines = ["security (uplink G-PDUs that failed a check):"]
    for name, kinds in counts.items():
        lines.append(f"  {name:<14}" + ", ".join(f"{k}={n}" for k, n in kinds.items()))
    for e in events:
        lines.append(
            f"  {e['kind']} from {e['peer']} ({e['slice']}): {e['count']} frames, "
            f"{e['distinct']} distinct, TEIDs {' '.join(e['teids'])}"
        )
    return lines


def format_report(report: dict[str, Any]) -> str:
    """The human view of a replay report."""
    lines = [
        f"{report['capture']}: {report['frames']} frames, {report['gtpu_frames']} GTP-U "
        f"(through {report['point']})",
        "",
        "frames by kind: "
        + "; ".join(
            f"{label}: {report['events'].get(kind, 0)}" for kind, label in FRAME_KINDS.items()
        ),
        "",
        f"{'slice':<14}{'dir':<10}{'packets':>10}{'bytes':>12}{'malformed':>11}",
    ]
    for name, entry in report["slices"].items():
        for dname in layout.DIRECTION_NAMES.values():
            st = entry[dname]
            if st["packets"]:
                lines.append(
                    f"{name:<14}{dname:<10}{st['packets']:>10}{st['bytes']:>12}{st['malformed']:>11}"
                )
    if "direction" in report:
        lines += ["", summary_line(report["direction"])]
    lines += [
        "",
        "message types: " + ", ".join(f"{k}={v}" for k, v in report["message_types"].items() if v),
    ]
    if report["teids"]:
        lines.append("TEIDs (G-PDU frames):")
        for teid, n in sorted(report["teids"].items(), key=lambda kv: -kv[1])[:20]:
            lines.append(f"  {teid}  {n:>8}  {report['teid_slices'][teid]}")
        if len(report["teids"]) > 20:
            lines.append(f"  ... {len(report['teids']) - 20} more (--json lists all)")
    if report["qfi"]:
        lines.append(
            "QFI (G-PDU frames): " + ", ".join(f"{q}={n}" for q, n in report["qfi"].items())
        )
    if report.get("sequence"):
        lines.append("GTP-U sequence numbers:")
        for r in report["sequence"]:
            lines.append(
                f"  {r['teid']} to {r['receiver']} {r['direction']:<9} received={r['received']} lost={r['lost']} "
                f"reordered={r['reordered']} duplicates={r['duplicates']}"
            )
    if report.get("sessions"):
        lines.append("PDU sessions learned from PFCP:")
        for d in report["sessions"]:
            snssai = d["snssai"]
            nssai = (
                "-"
                if snssai is None
                else f"{snssai['sst']}" + (f"-{snssai['sd']}" if snssai["sd"] else "")
            )
            ended = " (deleted)" if d["ended"] is not None else ""
            lines.append(
                f"  SEID {d['seid']} UE {d['ue_ip'] or '-'} S-NSSAI {nssai} DNN {d['dnn'] or '-'} "
                f"TEIDs {' '.join(d['teids']) or '-'} -> {d['slice'] or 'no slice'}"
                f"{' by ' + d['slice_rule'] if d['slice_rule'] else ''}{ended}"
            )
    pfcp = report.get("pfcp", {})
    if pfcp.get("rejects"):
        lines.append("PFCP not used: " + ", ".join(f"{k}={v}" for k, v in pfcp["rejects"].items()))
    if report["anomalies"]:
        lines.append("anomalies: " + ", ".join(f"{k}={v}" for k, v in report["anomalies"].items()))
    if "security" in report:
        lines += _security_lines(report["security"], report["security_events"])
    notes = report["replay"]
    if notes["frames_cut_to_test_run_limit"]:
        lines.append(
            f"note: {notes['frames_cut_to_test_run_limit']} frames longer than "
            f"{TEST_RUN_MAX_FRAME} bytes ran cut to that length (headers are all the programs read)"
        )
    if notes["frames_shorter_than_ethernet"]:
        lines.append(
            f"note: {notes['frames_shorter_than_ethernet']} frames shorter than an Ethernet header were not run"
        )
    return "\n".join(lines)
