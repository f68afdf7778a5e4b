"""The agent's own footprint, as an operator runs it (`sauron run` in its
own process, attached to a UPF's N3 interface in a namespace, the default
catalog, energy estimation and the REST service on):

- cold start-up: from launch to its API answering, with no data path
  pinned (the data path is compiled in a child process: bcc and LLVM);
- warm start-up: the same when the last agent stopped with
  --keep-datapath and left the data path counting (adopted, no compile);
- idle: CPU (utime + stime from /proc) and resident memory with no traffic,
  after a warm start;
- under load: the same while paced uplink G-PDUs of 3 000 sessions over the
  three slices arrive."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench.figures import Figure, figure
from bench.generator import FrameGenerator
from bench.n3_link import N3, n3_link, uplink_frames
from sauron.host.netns import inside

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "support"))
from agent_process import start_agent  # noqa: E402

TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S  # utime, stime


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise LookupError("no VmRSS")


def _start(config: Path, keep: bool) -> tuple[subprocess.Popen[str], float]:
    """The agent's process and its start-up time: launch until it serves."""
    t0 = time.perf_counter()
    proc, _ = start_agent(config, within_s=120, options=("--keep-datapath",) if keep else ())
    return proc, time.perf_counter() - t0


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.wait(30)


def _cpu_percent(pid: int, seconds: float) -> float:
    c0, t0 = _cpu_s(pid), time.perf_counter()
    time.sleep(seconds)
    return 100 * (_cpu_s(pid) - c0) / (time.perf_counter() - t0)


def run(quick: bool = False) -> list[Figure]:
    starts, idle_s, load_s, settle_s = (1, 2.0, 2.0, 1.0) if quick else (3, 30.0, 20.0, 5.0)
    cold, warm, idle_cpu, idle_rss, load_cpu, load_rss, load_pps = [], [], [], [], [], [], []
    with n3_link() as link, tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "agent.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "interfaces": [{"name": N3, "role": "n3", "netns": link.upf}],
                    "service": {"host": "127.0.0.1", "port": 0},
                    "datapath": {"state_dir": str(Path(tmp) / "state")},
                    # a slice degraded under the load is diagnosed: its pcapng here
                    "diagnosis": {"evidence": {"directory": str(Path(tmp) / "evidence")}},
                }
            )
        )
        with inside(link.gnb):
            gen = FrameGenerator("gnb0", [f for _, _, f in uplink_frames(1000)])
        for _ in range(starts):  # each stop removes the data path: the next start compiles
            proc, seconds = _start(config, keep=False)
            cold.append(seconds)
            _stop(proc)
        proc, _ = _start(config, keep=True)
        _stop(proc)  # left counting for the warm starts
        for k in range(starts):
            last = k == starts - 1
            proc, seconds = _start(config, keep=not last)
            try:
                warm.append(seconds)
                if last:  # one idle and load measurement, on the last start
                    time.sleep(settle_s)
                    idle_cpu.append(_cpu_percent(proc.pid, idle_s))
                    idle_rss.append(_rss_mb(proc.pid))
                    c0, t0 = _cpu_s(proc.pid), time.perf_counter()
                    sent = gen.paced(int(50_000 * load_s), 50_000)
                    load_cpu.append(100 * (_cpu_s(proc.pid) - c0) / (time.perf_counter() - t0))
                    load_rss.append(_rss_mb(proc.pid))
                    load_pps.append(sent.pps)
            finally:
                _stop(proc)
        gen.close()
    load = f"{load_pps[0]:.0f} frames/s, 3 000 sessions"
    return [
        figure(
            "agent_startup_s",
            cold,
            "s",
            what="launch to API answering, no data path pinned: compiled in a child process",
        ),
        figure(
            "agent_warm_startup_s",
            warm,
            "s",
            goal=1.0,
            goal_is="at_most",
            what="launch to API answering, adopting the data path the last agent left counting",
        ),
        figure(
            "agent_idle_cpu_percent",
            idle_cpu,
            "% of a core",
            goal=1.0,
            goal_is="at_most",
            what=f"no traffic, over {idle_s:.0f} s",
        ),
        figure(
            "agent_rss_mb",
            idle_rss,
            "MB",
            goal=100.0,
            goal_is="at_most",
            what="resident memory after a start, idle, energy estimator on",
        ),
        figure("agent_load_cpu_percent", load_cpu, "% of a core", what=f"under load: {load}"),
        figure("agent_load_rss_mb", load_rss, "MB", what=f"resident memory under load: {load}"),
    ]
