"""`make bench-service`: the agent's side of the cost.

1. The KPI engine's work per interval (read every map, build the snapshot,
   check the SLAs) as the number of TEIDs with counters grows: 1 000 and
   100 000 TEIDs sent through the real N3 program (the TEID table holds
   65 536 per CPU plus the 16 384 direct-mapped slots; beyond that the LRU
   evicts, which is what a node with more sessions would see).
2. REST under load, measured by wrk (C, one thread): the service in a
   process of its own (the agent's runtime over the real programs, 300
   intervals of history, ticking every second while TRAFFIC_PPS frames go
   through the N3 program from a process beside it); CLIENTS connections
   in a closed loop over the six main routes, then DASHBOARDS connections
   each polling about once a second (an open loop); p50/p99 over all
   requests, and per route for `make bench-service`."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import tempfile
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


#: frames per second the traffic process sends through the N3 program
#: while the service is measured, spread over FILL_TEIDS sessions
TRAFFIC_PPS = 20_000
FILL_TEIDS = 1_000
#: the open loop: dashboards each polling about once a second (wrk waits a
#: uniform 0..OPEN_LOOP_MAX_WAIT_MS before each request of a connection; a
#: mean under 1 s makes up for the answer's time and wrk's timer, so the
#: DASHBOARDS connections send about DASHBOARDS requests a second)
DASHBOARDS = 500
OPEN_LOOP_MAX_WAIT_MS = 1840
WRK_LUA = """
local paths = {%s}
local n = 0
local open_loop = %s
-- as browsers, Prometheus and Grafana ask
wrk.headers["Accept-Encoding"] = "gzip"
function setup(thread) thread:set("seed", math.random(1, 1000000)) end
function init(args) math.randomseed(seed) n = math.random(0, #paths - 1) end
function request()
  n = n + 1
  return wrk.format("GET", paths[(n %% #paths) + 1])
end
if open_loop then
  function delay() return math.random(0, %d) end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"errors\\": %%d, \\"non_2xx\\": %%d, "
    .. "\\"p50_us\\": %%d, \\"p99_us\\": %%d, \\"max_us\\": %%d}\\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def _traffic(fd: int, parent: int) -> None:
    """The traffic process (forked from the service's, so it holds the N3
    program's descriptor): TRAFFIC_PPS G-PDUs through the program, spread
    over FILL_TEIDS sessions, until `parent` is gone."""
    from sauron.bpf import libbpf

    frame, n = _template(), 0
    batch = TRAFFIC_PPS // 100
    next_at = time.monotonic()
    while os.getppid() == parent:
        for _ in range(batch):
            n = (n + 1) % FILL_TEIDS
            frame[TEID_AT : TEID_AT + 4] = (0x10000 + n).to_bytes(4, "big")
            frame[INNER_SRC_AT + 2 : INNER_SRC_AT + 4] = bytes(((n >> 8) & 0xFF, n & 0xFF))
            libbpf.test_run(fd, bytes(frame))
        next_at += 0.01
        time.sleep(max(0.0, next_at - time.monotonic()))


def _serve(port_out: Any) -> None:
    """The service process: the agent's runtime over the real programs,
    300 intervals of history, then ticking every second while a process
    beside it sends traffic through the N3 program."""
    from aiohttp import web

    from sauron.abi import layout
    from sauron.agent.runtime import AgentRuntime, ProgramMaps
    from sauron.bpf.loader import DataPlane
    from sauron.bpf.rules import program_catalog
    from sauron.catalog import load_catalog
    from sauron.service.app import ServiceOptions, create_app
    from sauron.service.serving import service_runner

    catalog = load_catalog()
    dp = DataPlane()
    program_catalog(dp, catalog)
    fill(dp, FILL_TEIDS)
    made_up: list[float | None] = [time.time() - 300.0]

    def clock() -> float:
        return time.time() if made_up[0] is None else made_up[0]

    runtime = AgentRuntime(catalog, ProgramMaps(dp, shortcut=False), clock=clock)
    # no rate limit: the clients share one address; the agent's own server
    # settings. Made before the history, as an agent's is.
    runner = service_runner(create_app(runtime, options=ServiceOptions(rate_per_s=0)))
    for _ in range(300):
        made_up[0] = clock() + 1.0
        runtime.engine.tick()
    made_up[0] = None
    me = os.getpid()
    if os.fork() == 0:
        try:
            _traffic(dp.program_fd(layout.POINT_N3_INGRESS), me)
        finally:
            os._exit(0)

    async def serve() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        async with runtime:  # ticking, as `sauron run` does
            port_out.put(runner.addresses[0][1])
            await asyncio.Event().wait()

    asyncio.run(serve())


def wrk(
    base: str, paths: tuple[str, ...], connections: int, seconds: int, open_loop: bool
) -> dict[str, Any]:
    """One wrk run over `paths` in turn, in one thread (the load generator
    leaves the other CPU to the service); its figures in ms and requests/s."""
    quoted = ", ".join(f'"{p}"' for p in paths)
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(WRK_LUA % (quoted, "true" if open_loop else "false", OPEN_LOOP_MAX_WAIT_MS))
        script.flush()
        command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s"]
        done = subprocess.run(
            [*command, "-s", script.name, base],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}{done.stderr}")
    r = json.loads(line.removeprefix("RESULT "))
    if r["errors"] or r["non_2xx"]:
        raise RuntimeError(f"wrk saw errors: {r}")
    return {
        "connections": connections,
        "requests": r["requests"],
        "requests_per_s": r["requests"] / (r["duration_us"] / 1e6),
        "p50_ms": r["p50_us"] / 1e3,
        "p99_ms": r["p99_us"] / 1e3,
        "max_ms": r["max_us"] / 1e3,
    }


def rest_latency(seconds: int = 10, per_route: bool = False) -> dict[str, Any]:
    """Both loads, one after the other, against one service under traffic;
    with `per_route`, each route alone at CLIENTS connections too."""
    ctx = multiprocessing.get_context("spawn")
    port_q = ctx.Queue()
    server = ctx.Process(target=_serve, args=(port_q,), daemon=True)
    server.start()
    try:
        port = port_q.get(timeout=180)
        base = f"http://127.0.0.1:{port}"
        wrk(base, ROUTES, CLIENTS, 1, open_loop=False)  # warm-up
        closed = wrk(base, ROUTES, CLIENTS, seconds, open_loop=False)
        opened = wrk(base, ROUTES, DASHBOARDS, seconds, open_loop=True)
        routes = (
            {r: wrk(base, (r,), CLIENTS, 2, open_loop=False) for r in ROUTES} if per_route else {}
        )
    finally:
        server.terminate()
        server.join()
    return {"closed": closed, "open": opened, "routes": routes}


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
    rest = rest_latency(per_route=True)
    closed, opened = rest["closed"], rest["open"]
    print(
        f"\nREST under traffic ({TRAFFIC_PPS} frames/s), wrk over six routes:\n"
        f"  closed loop, {closed['connections']} connections: p50 {closed['p50_ms']:.2f} ms, "
        f"p99 {closed['p99_ms']:.2f} ms, {closed['requests_per_s']:.0f} req/s\n"
        f"  open loop, {opened['connections']} dashboards: p50 {opened['p50_ms']:.2f} ms, "
        f"p99 {opened['p99_ms']:.2f} ms, {opened['requests_per_s']:.0f} req/s"
    )
    for route, t in rest["routes"].items():
        print(
            f"  {route:<58} p50 {t['p50_ms']:6.2f} ms  p99 {t['p99_ms']:6.2f} ms"
            f"  {t['requests_per_s']:6.0f} req/s"
        )
    out = Path(__file__).resolve().parent / "service_results.json"
    out.write_text(
        json.dumps({"machine": machine, "engine": engine, "rest": rest}, indent=2) + "\n"
    )
    print(f"\nwritten {out}")


def run(quick: bool = False) -> list[Figure]:
    """For `make bench`: REST under traffic, closed and open loop, three runs."""
    runs, seconds = (1, 2) if quick else (3, 10)
    results = [rest_latency(seconds) for _ in range(runs)]
    closed = [r["closed"] for r in results]
    opened = [r["open"] for r in results]
    what = (
        f"wrk, {CLIENTS} connections each sending its next request when the last is "
        f"answered, six routes in turn, gzip accepted, the agent ticking under "
        f"{TRAFFIC_PPS} frames/s"
    )
    what_open = (
        f"wrk, {DASHBOARDS} dashboards each polling about once a second (open loop), "
        "the same routes and traffic"
    )
    detail = {"runs": results}
    return [
        figure("rest_p50_ms", [r["p50_ms"] for r in closed], "ms", what=what, detail=detail),
        figure(
            "rest_p99_ms",
            [r["p99_ms"] for r in closed],
            "ms",
            goal=10.0,
            goal_is="at_most",
            what=what,
        ),
        figure(
            "rest_requests_per_s",
            [r["requests_per_s"] for r in closed],
            "requests/s",
            goal=5000.0,
            goal_is="at_least",
            what="the one service process's throughput in the closed loop",
        ),
        figure(
            "rest_open_loop_p99_ms",
            [r["p99_ms"] for r in opened],
            "ms",
            goal=5.0,
            goal_is="at_most",
            what=what_open,
        ),
        figure(
            "rest_open_loop_requests_per_s",
            [r["requests_per_s"] for r in opened],
            "requests/s",
            what="the rate the open loop's dashboards reached",
        ),
    ]


if __name__ == "__main__":
    main()
