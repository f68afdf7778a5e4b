"""`make bench-service`: the agent's side of the cost.

1. The KPI engine's work per interval (read every map, build the snapshot,
   check the SLAs) as the number of TEIDs with counters grows: 1 000 and
   100 000 TEIDs sent through the real N3 program (the TEID table holds
   65 536 per CPU plus the 16 384 direct-mapped slots; beyond that the LRU
   evicts, which is what a node with more sessions would see).
2. REST latency under 50 concurrent clients: the service in a process of
   its own (engine over the real programs, 300 intervals of history), the
   clients in this one; p50/p99 per route and over all requests."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from scapy.layers.inet import IP, UDP
from scapy.packet import Raw

from bench.figures import Figure, figure
from sauron.testbed.gtpu_frames import gtpu_frame

TEID_COUNTS = (1_000, 100_000)
TICKS = 7
CLIENTS = 50
REQUESTS_PER_CLIENT = 60
ROUTES = (
    "/api/v1/slices",
    "/api/v1/slices/embb",
    "/api/v1/slices/embb/kpis?step=10",
    "/api/v1/slices/embb/histograms/transit?direction=uplink",
    "/api/v1/sla",
    "/metrics",
)
# offsets in the template frame (no extension header): TEID, inner source
TEID_AT = 14 + 20 + 8 + 4
INNER_SRC_AT = 14 + 20 + 8 + 8 + 12


def _template() -> bytearray:
    inner = IP(src="10.45.0.1", dst="198.51.100.9") / UDP(sport=40000, dport=5000) / Raw(b"x" * 64)
    return bytearray(gtpu_frame(inner, 0x10000))


def fill(dp: Any, teids: int) -> None:
    """One G-PDU per TEID, each from its own UE address; TEIDs run through
    the eMBB range and beyond (those stay unclassified, still counted)."""
    from sauron.abi import layout
    from sauron.bpf import libbpf

    fd = dp.program_fd(layout.POINT_N3_INGRESS)
    frame = _template()
    for n in range(teids):
        frame[TEID_AT : TEID_AT + 4] = (0x10000 + n).to_bytes(4, "big")
        frame[INNER_SRC_AT : INNER_SRC_AT + 4] = bytes((10, 45, (n >> 8) & 0xFF, n & 0xFF))
        libbpf.test_run(fd, bytes(frame))


def engine_cost(teids: int) -> dict[str, Any]:
    from sauron.agent.runtime import AgentRuntime, ProgramMaps
    from sauron.bpf.loader import DataPlane
    from sauron.bpf.maps import read_counters
    from sauron.bpf.rules import program_catalog
    from sauron.catalog import load_catalog
    from sauron.kpi.engine import snapshot_from

    catalog = load_catalog()
    dp = DataPlane()
    program_catalog(dp, catalog)
    fill(dp, teids)
    # the agent's engine, ticked here: every map read in full, as timed above
    engine = AgentRuntime(catalog, ProgramMaps(dp, shortcut=False)).engine
    reads, snaps, ticks = [], [], []
    for _ in range(TICKS):
        fill(dp, min(teids, 2_000))  # some sessions move each interval
        t0 = time.perf_counter()
        now = read_counters(dp)
        t1 = time.perf_counter()
        snapshot_from(catalog, now, engine.counters, 1.0, time.time())
        t2 = time.perf_counter()
        engine.tick()
        t3 = time.perf_counter()
        reads.append(t1 - t0)
        snaps.append(t2 - t1)
        ticks.append(t3 - t2)
    held = len(engine.counters.teids)
    dp.close()
    return {
        "teids_sent": teids,
        "teids_held": held,
        "read_ms": statistics.median(reads) * 1e3,
        "snapshot_ms": statistics.median(snaps) * 1e3,
        "tick_ms": statistics.median(ticks) * 1e3,
    }


def _serve(port_out: Any) -> None:
    """The service process: real programs, 300 intervals of history."""
    from aiohttp import web

    from sauron.agent.runtime import AgentRuntime, ProgramMaps
    from sauron.bpf.loader import DataPlane
    from sauron.bpf.rules import program_catalog
    from sauron.catalog import load_catalog
    from sauron.service.app import ServiceOptions, create_app
    from sauron.service.serving import service_runner

    catalog = load_catalog()
    dp = DataPlane()
    program_catalog(dp, catalog)
    fill(dp, 1_000)
    clock = [time.time() - 300.0]
    # not started: its history is made here, the service only reads it
    runtime = AgentRuntime(catalog, ProgramMaps(dp, shortcut=False), clock=lambda: clock[0])
    for _ in range(300):
        clock[0] += 1.0
        runtime.engine.tick()

    async def main() -> None:
        # no rate limit: the 50 clients share one address; the agent's own
        # server settings (idle connections closed)
        runner = service_runner(create_app(runtime, options=ServiceOptions(rate_per_s=0)))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_out.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


async def _load(base: str, per_client: int = REQUESTS_PER_CLIENT) -> dict[str, list[float]]:
    import aiohttp

    timings: dict[str, list[float]] = {r: [] for r in ROUTES}
    connector = aiohttp.TCPConnector(limit=CLIENTS)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client(k: int) -> None:
            for i in range(per_client):
                route = ROUTES[(k + i) % len(ROUTES)]
                t0 = time.perf_counter()
                async with session.get(base + route) as r:
                    await r.read()
                    assert r.status == 200, (route, r.status)
                timings[route].append(time.perf_counter() - t0)

        await asyncio.gather(*(client(k) for k in range(CLIENTS)))
    return timings


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3


def rest_latency(per_client: int = REQUESTS_PER_CLIENT) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    port_q = ctx.Queue()
    server = ctx.Process(target=_serve, args=(port_q,), daemon=True)
    server.start()
    try:
        port = port_q.get(timeout=120)
        base = f"http://127.0.0.1:{port}"
        asyncio.run(_load(base, per_client))  # warm-up
        t0 = time.perf_counter()
        timings = asyncio.run(_load(base, per_client))
        wall = time.perf_counter() - t0
    finally:
        server.terminate()
        server.join()
    every = [v for vs in timings.values() for v in vs]
    return {
        "clients": CLIENTS,
        "requests": len(every),
        "requests_per_s": len(every) / wall,
        "p50_ms": _p(every, 0.50),
        "p99_ms": _p(every, 0.99),
        "routes": {r: {"p50_ms": _p(v, 0.5), "p99_ms": _p(v, 0.99)} for r, v in timings.items()},
    }


def main() -> None:
    machine = f"{platform.node()} {platform.machine()} {platform.release()}, {os.cpu_count()} CPUs"
    print(f"engine per interval, median of {TICKS} ticks; {machine}")
    print(f"{'TEIDs sent':>11}{'held':>8}{'read ms':>10}{'snapshot ms':>13}{'tick ms':>10}")
    engine = []
    for n in TEID_COUNTS:
        r = engine_cost(n)
        engine.append(r)
        print(
            f"{r['teids_sent']:>11}{r['teids_held']:>8}{r['read_ms']:>10.1f}"
            f"{r['snapshot_ms']:>13.1f}{r['tick_ms']:>10.1f}"
        )
    rest = rest_latency()
    print(
        f"\nREST, {rest['clients']} concurrent clients, {rest['requests']} requests: "
        f"p50 {rest['p50_ms']:.1f} ms, p99 {rest['p99_ms']:.1f} ms, {rest['requests_per_s']:.0f} req/s"
    )
    for route, t in rest["routes"].items():
        print(f"  {route:<58} p50 {t['p50_ms']:6.1f} ms  p99 {t['p99_ms']:6.1f} ms")
    out = Path(__file__).resolve().parent / "service_results.json"
    out.write_text(
        json.dumps({"machine": machine, "engine": engine, "rest": rest}, indent=2) + "\n"
    )
    print(f"\nwritten {out}")


def run(quick: bool = False) -> list[Figure]:
    """For `make bench`: REST latency at 50 concurrent clients, three runs."""
    runs, per_client = (1, 4) if quick else (3, REQUESTS_PER_CLIENT)
    results = [rest_latency(per_client) for _ in range(runs)]
    what = f"{CLIENTS} clients each sending its next request when the last is answered, six routes"
    return [
        figure("rest_p50_ms", [r["p50_ms"] for r in results], "ms", what=what),
        figure(
            "rest_p99_ms",
            [r["p99_ms"] for r in results],
            "ms",
            goal=10.0,
            goal_is="at_most",
            what=what,
        ),
        figure(
            "rest_requests_per_s",
            [r["requests_per_s"] for r in results],
            "requests/s",
            what="the one service process's throughput meanwhile",
        ),
    ]


if __name__ == "__main__":
    main()
