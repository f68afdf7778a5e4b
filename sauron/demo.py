"""`sauron demo`: the agent on the UPF of the netns testbed, three slices of
real traffic, a live per-slice table, and an SLA broken on purpose.

eMBB UEs download over TCP, URLLC UEs send small periodic UDP, mMTC UEs
(many) send sparse UDP. At 40 % of the run the reference UPF starts
rate-limiting eMBB to 0.5 Mbit/s, under the catalog's 1 Mbit/s downlink
minimum, and the SLA tracker opens a violation.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sauron.bpf import layout
from sauron.bpf.loader import DataPlane
from sauron.bpf.maps import DataPlaneCounters, active_per_slice, read_counters
from sauron.catalog import Catalog, load_catalog
from sauron.interfaces import attach_interfaces
from sauron.rules import program_catalog
from sauron.sla import SlaTracker
from sauron.testbed.bed import N6_DN, TCP_SOURCE_PORT, UDP_ECHO_PORT, Testbed
from sauron.testbed.sessions import Impairment, SessionsFile, make_sessions

UES = {"embb": 2, "urllc": 4, "mmtc": 40}
URLLC_PERIOD_S = 0.01
MMTC_PERIOD_S = 1.0
BREAK_AT = 0.4
BROKEN = {"embb": Impairment(rate_mbps=0.5)}


@dataclass
class Traffic:
    """The UEs' applications, each on a thread, all stopped by one event."""

    bed: Testbed
    sessions: SessionsFile
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    downloaded: int = 0

    def ues(self, slice_name: str) -> list[str]:
        return [str(s.ue_ip) for s in self.sessions.sessions if s.slice == slice_name]

    def start(self) -> None:
        for ue in self.ues("embb"):
            self._spawn(self._download, ue)
        self._spawn(self._periodic, self.ues("urllc"), URLLC_PERIOD_S, 64)
        self._spawn(
            self._periodic, self.ues("mmtc"), MMTC_PERIOD_S / len(self.ues("mmtc")), 40, True
        )

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _download(self, ue: str) -> None:
        while not self.stop.is_set():
            try:
                conn = self.bed.ue_tcp_connection(ue, TCP_SOURCE_PORT, timeout=1.0)
            except OSError:
                time.sleep(0.2)
                continue
            with conn:
                while not self.stop.is_set():
                    try:
                        chunk = conn.recv(65536)
                    except TimeoutError:
                        continue
                    except OSError:
                        break
                    if not chunk:
                        break
                    self.downloaded += len(chunk)

    def _periodic(
        self, ues: list[str], period: float, size: int, one_at_a_time: bool = False
    ) -> None:
        socks = [self.bed.ue_udp_socket(ue) for ue in ues]
        for sock in socks:
            sock.setblocking(False)
        turn = 0
        next_at = time.monotonic()
        while not self.stop.is_set():
            senders = [socks[turn % len(socks)]] if one_at_a_time else socks
            turn += 1
            for sock in senders:
                with contextlib.suppress(OSError):
                    sock.sendto(bytes(size), (N6_DN, UDP_ECHO_PORT))
            for sock in socks:
                with contextlib.suppress(OSError):
                    while sock.recv(2048):
                        pass
            next_at += period
            time.sleep(max(0.0, next_at - time.monotonic()))
        for sock in socks:
            sock.close()

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=3)


def _mbps(now: layout.SliceStats, before: layout.SliceStats, seconds: float) -> float:
    return float(now.bytes - before.bytes) * 8 / seconds / 1e6


def _upf_drops(c: DataPlaneCounters, slice_id: int) -> int:
    """Packets that entered the UPF and did not leave it, both directions
    (counts include packets in flight at the moment of reading)."""
    ul = (
        c.slice(layout.POINT_N3_INGRESS, slice_id, 0).msg[0]
        - c.slice(layout.POINT_N6_EGRESS, slice_id, 0).packets
    )
    dl = (
        c.slice(layout.POINT_N6_INGRESS, slice_id, 1).packets
        - c.slice(layout.POINT_N3_EGRESS, slice_id, 1).packets
    )
    return int(max(0, ul) + max(0, dl))


def format_table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'slice':<7}{'S-NSSAI':<10}{'SLA':<11}{'UL Mbit/s':>10}{'DL Mbit/s':>10}"
        f"{'UL pkt/s':>9}{'DL pkt/s':>9}{'TEIDs':>6}{'UEs':>5}{'UPF drops':>10}"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"{r['slice']:<7}{r['snssai']:<10}{r['sla']:<11}{r['ul_mbps']:>10.2f}{r['dl_mbps']:>10.2f}"
            f"{r['ul_pps']:>9.0f}{r['dl_pps']:>9.0f}{r['teids']:>6}{r['ues']:>5}{r['upf_drops']:>10}"
        )
    return "\n".join(lines)


def run_demo(
    duration: float,
    catalog: Catalog | None = None,
    out: Callable[[str], None] = print,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Runs the demo; returns per-slice totals, the SLA events and the
    testbed's ground truth."""
    catalog = catalog or load_catalog()
    sessions = SessionsFile(sessions=make_sessions(catalog, UES, qfi={"urllc": 1, "mmtc": 5}))
    workdir = workdir or Path(tempfile.mkdtemp(prefix="sauron-demo-"))
    tracker = SlaTracker(catalog)
    dp = DataPlane()
    program_catalog(dp, catalog)

    def attach(bed: Testbed) -> None:
        attach_interfaces(dp, bed.interfaces(), bed.topology)

    with dp, Testbed(catalog, sessions, workdir, before_nodes=attach) as bed:
        out(
            f"testbed up: gNB {bed.gnb}, UPF {bed.upf}, DN {bed.dn}; agent on the UPF's n3 and n6; "
            f"ground truth in {workdir}"
        )
        traffic = Traffic(bed, sessions)
        traffic.start()
        started = prev_t = time.monotonic()
        previous = read_counters(dp)
        broken = False
        try:
            while (now_t := time.monotonic()) < started + duration:
                time.sleep(max(0.0, min(1.0, started + duration - now_t)))
                if not broken and time.monotonic() - started >= BREAK_AT * duration:
                    bed.set_impairments(BROKEN)
                    broken = True
                    out(
                        ">>> the UPF now rate-limits eMBB to 0.5 Mbit/s (its SLA asks for 1 Mbit/s downlink)\n"
                    )
                now = read_counters(dp)
                t = time.monotonic()
                dt = max(t - prev_t, 1e-6)
                throughput: dict[str, dict[str, float]] = {}
                rows = []
                teids = active_per_slice(previous.teids, now.teids)
                ues = active_per_slice(previous.ues, now.ues)
                for s in catalog.slices:
                    ul_now, ul_before = (
                        now.slice(layout.POINT_N6_EGRESS, s.id, 0),
                        previous.slice(layout.POINT_N6_EGRESS, s.id, 0),
                    )
                    dl_now, dl_before = (
                        now.slice(layout.POINT_N3_EGRESS, s.id, 1),
                        previous.slice(layout.POINT_N3_EGRESS, s.id, 1),
                    )
                    throughput[s.name] = {
                        "uplink": _mbps(ul_now, ul_before, dt),
                        "downlink": _mbps(dl_now, dl_before, dt),
                    }
                    rows.append(
                        {
                            "slice": s.name,
                            "snssai": str(s.spec.snssai),
                            "sla": "",
                            "ul_mbps": throughput[s.name]["uplink"],
                            "dl_mbps": throughput[s.name]["downlink"],
                            "ul_pps": (ul_now.packets - ul_before.packets) / dt,
                            "dl_pps": (dl_now.packets - dl_before.packets) / dt,
                            "teids": teids.get(s.id, 0),
                            "ues": ues.get(s.id, 0),
                            "upf_drops": _upf_drops(now, s.id),
                        }
                    )
                tracker.observe(throughput)
                for row in rows:
                    row["sla"] = tracker.status(row["slice"])
                out(f"t={t - started:5.1f}s\n{format_table(rows)}\n")
                previous, prev_t = now, t
        except KeyboardInterrupt:
            out("interrupted")
        finally:
            traffic.join()
        truth = bed.stop()
        final = read_counters(dp)
    for v in tracker.events:
        end = f"ended at interval {v.ended_interval}" if v.ended_interval else "still open"
        out(
            f"SLA violation: {v.slice_name} {v.target} < {v.limit} from interval {v.started_interval}, "
            f"{end}, worst {v.worst:.2f}"
        )
    totals = {
        s.name: {
            "uplink_packets": int(final.slice(layout.POINT_N3_INGRESS, s.id, 0).packets),
            "downlink_packets": int(final.slice(layout.POINT_N3_EGRESS, s.id, 1).packets),
        }
        for s in catalog.slices
    }
    return {
        "slices": totals,
        "violations": [vars(v) for v in tracker.events],
        "truth": truth,
        "workdir": str(workdir),
    }
