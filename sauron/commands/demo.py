"""`sauron demo`: the agent on the UPF of the netns testbed, three slices of
real traffic, a live per-slice table, and an SLA broken on purpose.

eMBB UEs download over TCP, URLLC UEs send small periodic UDP, mMTC UEs
(many) send sparse UDP. At 40 % of the run the reference UPF starts
rate-limiting eMBB to 0.5 Mbit/s, under the catalog's 1 Mbit/s downlink
minimum, and the SLA tracker opens a violation.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from sauron.abi import layout
from sauron.agent.interfaces import attach_interfaces
from sauron.agent.runtime import AgentRuntime, ProgramMaps
from sauron.bpf.loader import DataPlane
from sauron.bpf.maps import read_counters
from sauron.bpf.measurements import TransitExpiry, apply_settings, settings_for
from sauron.bpf.rules import program_catalog
from sauron.catalog import Catalog, load_catalog
from sauron.commands.views import clock, kpis_table, with_unit
from sauron.export.influx.publisher import Publisher
from sauron.kpi.records import Snapshot
from sauron.service.app import create_app
from sauron.service.documents import snapshot_doc
from sauron.service.schemas import SnapshotDoc
from sauron.service.serving import service_runner
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


def _table(snap: Snapshot, catalog: Catalog) -> str:
    """The same table as `sauron kpis`, from the same documents."""
    doc = SnapshotDoc.model_validate(snapshot_doc(snap))
    return kpis_table([(s.name, doc.slices[s.name]) for s in catalog.slices])


async def _serve(
    runtime: AgentRuntime,
    bed: Testbed,
    duration: float,
    host: str,
    port: int,
    out: Callable[[str], None],
) -> None:
    async with runtime:
        runner = service_runner(create_app(runtime))
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
            # port 0 asks the kernel for a free one; say which it gave
            bound = runner.addresses[0][1] if runner.addresses else port
            out(
                f"API: http://{host}:{bound}/api/v1/slices  (also /api/v1/slices/embb/kpis, /api/v1/sla, /readyz)"
            )
            await asyncio.sleep(BREAK_AT * duration)
            bed.set_impairments(BROKEN)
            out(
                ">>> the UPF now rate-limits eMBB to 0.5 Mbit/s (its SLA asks for 1 Mbit/s downlink)\n"
            )
            await asyncio.sleep((1 - BREAK_AT) * duration)
        finally:
            await runner.cleanup()


def run_demo(
    duration: float,
    catalog: Catalog | None = None,
    out: Callable[[str], None] = print,
    workdir: Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8080,
    publisher: Publisher | None = None,
) -> dict[str, Any]:
    """Runs the demo; returns per-slice totals, the SLA events and the
    testbed's ground truth."""
    catalog = catalog or load_catalog()
    sessions = SessionsFile(sessions=make_sessions(catalog, UES, qfi={"urllc": 1, "mmtc": 5}))
    workdir = workdir or Path(tempfile.mkdtemp(prefix="sauron-demo-"))
    dp = DataPlane()
    program_catalog(dp, catalog)
    # both sides of the UPF are watched: transit stamps can be matched
    apply_settings(dp, settings_for(catalog))
    expiry = TransitExpiry(dp)

    def attach(bed: Testbed) -> None:
        attach_interfaces(dp, bed.interfaces(), bed.links)

    with dp, Testbed(catalog, sessions, workdir, before_nodes=attach) as bed:
        out(
            f"testbed up: gNB {bed.gnb}, UPF {bed.upf}, DN {bed.dn}; agent on the UPF's n3 and n6; "
            f"ground truth in {workdir}"
        )
        traffic = Traffic(bed, sessions)
        traffic.start()
        started = time.monotonic()
        runtime = AgentRuntime(
            catalog,
            ProgramMaps(dp, expiry, catalog.slice_rows),
            exporters=[publisher] if publisher is not None else [],
        )
        runtime.engine.listeners.append(
            lambda snap: out(f"t={time.monotonic() - started:5.1f}s\n{_table(snap, catalog)}\n")
        )
        try:
            asyncio.run(_serve(runtime, bed, duration, host, port, out))
        except KeyboardInterrupt:
            out("interrupted")
        finally:
            traffic.join()
        truth = bed.stop()
        final = read_counters(dp)
    tracker = runtime.engine.sla
    for v in tracker.events:
        end = f"ended {clock(v.ended_at)} ({v.end_reason})" if not v.open else "still open"
        out(
            f"SLA violation: {v.slice_name} {v.target} (limit {with_unit(v.target, v.limit)}) "
            f"from {clock(v.started_at)}, {end}, worst {with_unit(v.target, v.worst)}"
        )
    totals = {
        s.name: {
            "uplink_packets": int(final.slice(layout.POINT_N3_INGRESS, s.id, 0).packets),
            "downlink_packets": int(final.slice(layout.POINT_N3_EGRESS, s.id, 1).packets),
        }
        for s in catalog.slices
    }
    if publisher is not None:
        h = publisher.summary()
        out(
            f"InfluxDB {h['url']} bucket {h['bucket']}: {h['points_written']} points written, "
            f"{h['spool_points']} waiting in the spool, {h['points_dropped']} dropped"
        )
    return {
        "slices": totals,
        "violations": [{**vars(v), "open": v.open} for v in tracker.events],
        "truth": truth,
        "workdir": str(workdir),
    }
