"""`make bench-publish`: what the InfluxDB publisher sustains and what each
point costs, side by side in one run:

1. encoding only: snapshots into line protocol (the engine thread's share);
2. publishing: points offered as fast as the publisher takes them, written
   to a victoria-metrics on loopback (InfluxDB v2 write API) in batches of
   5 000, until the server has acknowledged every one;
3. spooling: the same with the server away, every batch fsync'd to disk.

CPU per point is this process's CPU time (the server's is not counted)
divided by the points; the snapshot is a three-slice one with latency,
loss and energy figures, about as many points as a real interval gives."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.figures import Figure, figure
from sauron.abi.histogram import LATENCY, Histogram
from sauron.abi.kpis import DIRECTION_LATENCY, SLICE_LATENCY
from sauron.energy.model import NodeEnergy, SliceEnergy
from sauron.export.influx.points import snapshot_points
from sauron.export.influx.publisher import Publisher
from sauron.export.influx.settings import InfluxConfig
from sauron.kpi.quality import LatencyKpis, LossKpis
from sauron.kpi.records import DirectionKpis, SliceKpis, Snapshot

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))
from timeseries import VictoriaMetrics

SNAPSHOTS = 2_000


def latency(spread: int) -> LatencyKpis:
    h = Histogram(LATENCY)
    for i in range(spread):
        value = 50_000 + i * 9_000
        h.buckets[LATENCY.bucket(value)] += 3
        h.count += 3
        h.total += 3 * value
        h.maximum = max(h.maximum, value)
    return LatencyKpis.from_histogram(h)


def snapshot(t: float) -> Snapshot:
    slices = {}
    for sid, name in enumerate(("embb", "urllc", "mmtc"), start=1):
        direction = DirectionKpis(
            packets_in=1200,
            bytes_in=1_500_000,
            packets_out=1199,
            bytes_out=1_498_000,
            pps=1199.0,
            mbps=11.98,
            upf_drops=1,
            latency={k.name: latency(24) for k in DIRECTION_LATENCY},
            loss=LossKpis(
                transit_lost=1,
                transit_resolved=75,
                transit_ratio=1 / 75,
                sequence_lost=2,
                sequence_received=1198,
                sequence_ratio=2 / 1200,
            ),
        )
        slices[name] = SliceKpis(
            name=name,
            slice_id=sid,
            snssai=f"{sid}-00000{sid}",
            uplink=direction,
            downlink=direction,
            active_teids=40,
            active_ues=40,
            latency={k.name: latency(12) for k in SLICE_LATENCY},
            sla="met",
            energy=SliceEnergy(cycles_softirq=2e6, cycles_process=8e6, joules=0.4, watts=0.4),
        )
    return Snapshot(
        time=t,
        interval_s=1.0,
        slices=slices,
        energy=NodeEnergy(method="profile", profile="generic", joules=3.0),
    )


def encode_only(snaps: list[Snapshot]) -> dict[str, Any]:
    cpu, wall = time.process_time(), time.perf_counter()
    points = sum(len(snapshot_points("node-1", s)) for s in snaps)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"points": points, "points_per_s": points / wall, "cpu_us_per_point": cpu / points * 1e6}


def publish(lines: list[str], url: str, spool: Path) -> dict[str, Any]:
    config = InfluxConfig(
        url=url,
        spool_dir=spool,
        batch_size=5000,
        flush_interval_s=0.05,
        queue_points=len(lines) + 1,
        retry_first_s=3600,
        retry_max_s=3600,
    )
    publisher = Publisher(config, "node-1", None)

    async def go() -> tuple[float, float]:
        await publisher.start()
        cpu, wall = time.process_time(), time.perf_counter()
        publisher.offer(lines)
        while publisher.stats.points_written + publisher.spool.points < len(lines):
            await asyncio.sleep(0.005)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        await publisher.stop()
        return cpu, wall

    cpu, wall = asyncio.run(go())
    return {
        "points": len(lines),
        "written": publisher.stats.points_written,
        "spooled": publisher.stats.points_spooled,
        "points_per_s": len(lines) / wall,
        "cpu_us_per_point": cpu / len(lines) * 1e6,
    }


def main() -> None:
    machine = f"{platform.node()} {platform.machine()} {platform.release()}, {os.cpu_count()} CPUs"
    base = time.time() - 86_400
    snaps = [snapshot(base + i) for i in range(SNAPSHOTS)]
    lines = [x for s in snaps for x in snapshot_points("node-1", s)]
    print(f"{SNAPSHOTS} snapshots, {len(lines) // SNAPSHOTS} points each; {machine}")
    with tempfile.TemporaryDirectory() as tmp:
        server = VictoriaMetrics(Path(tmp) / "vm")
        server.start()
        try:
            results = {
                "encode": encode_only(snaps),
                "publish": publish(lines, server.url, Path(tmp) / "spool-a"),
            }
        finally:
            server.stop()
        results["spool"] = publish(lines, server.url, Path(tmp) / "spool-b")
    enc = results["encode"]["cpu_us_per_point"]
    print(f"{'':<10}{'points/s':>12}{'CPU us/point':>14}{'x encode':>10}")
    for name, r in results.items():
        print(
            f"{name:<10}{r['points_per_s']:>12.0f}{r['cpu_us_per_point']:>14.2f}{r['cpu_us_per_point'] / enc:>10.2f}"
        )
    assert results["publish"]["written"] == len(lines)
    assert results["spool"]["written"] == 0 and results["spool"]["spooled"] == len(lines)
    out = Path(__file__).resolve().parent / "publish_results.json"
    out.write_text(
        json.dumps(
            {"machine": machine, "points_per_snapshot": len(lines) // SNAPSHOTS, **results},
            indent=2,
        )
        + "\n"
    )
    print(f"\nwritten {out}")


def run(quick: bool = False) -> list[Figure]:
    """For `make bench`: encoding and writing, three runs each."""
    count, runs = (50, 1) if quick else (SNAPSHOTS, 3)
    base = time.time() - 86_400
    snaps = [snapshot(base + i) for i in range(count)]
    lines = [x for s in snaps for x in snapshot_points("node-1", s)]
    encoded, written = [], []
    with tempfile.TemporaryDirectory() as tmp:
        server = VictoriaMetrics(Path(tmp) / "vm")
        server.start()
        try:
            for k in range(runs):
                encoded.append(encode_only(snaps)["points_per_s"])
                result = publish(lines, server.url, Path(tmp) / f"spool-{k}")
                if result["written"] != len(lines):
                    raise RuntimeError(
                        f"the server acknowledged {result['written']} of {len(lines)} points"
                    )
                written.append(result["points_per_s"])
        finally:
            server.stop()
    per = f"{len(lines) // count} points per three-slice interval"
    return [
        figure(
            "publisher_points_per_s",
            written,
            "points/s",
            what=f"written to a time-series server on loopback, all acknowledged; {per}",
        ),
        figure(
            "publisher_encode_points_per_s",
            encoded,
            "points/s",
            what="snapshots encoded into line protocol",
        ),
    ]


if __name__ == "__main__":
    main()
