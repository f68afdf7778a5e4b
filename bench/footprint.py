"""The agent's own footprint, as an operator runs it (`sauron run` in its
own process, attached to a UPF's N3 interface in a namespace, the default
catalog, energy estimation and the REST service on):

- start-up: from launch to its API answering, bcc compilation included;
- idle: CPU (utime + stime from /proc) and resident memory with no traffic;
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


def _start(config: Path) -> tuple[subprocess.Popen[str], float]:
    """The agent's process and its start-up time: launch until it serves."""
    t0 = time.perf_counter()
    proc, _ = start_agent(config, within_s=120)
    return proc, time.perf_counter() - t0


def _cpu_percent(pid: int, seconds: float) -> float:
    c0, t0 = _cpu_s(pid), time.perf_counter()
    time.sleep(seconds)
    return 100 * (_cpu_s(pid) - c0) / (time.perf_counter() - t0)


def run(quick: bool = False) -> list[Figure]:
    starts, idle_s, load_s, settle_s = (1, 2.0, 2.0, 1.0) if quick else (3, 30.0, 20.0, 5.0)
    startup, idle_cpu, idle_rss, load_cpu, load_rss, load_pps = [], [], [], [], [], []
    with n3_link() as link, tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "agent.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "interfaces": [{"name": N3, "role": "n3", "netns": link.upf}],
                    "service": {"host": "127.0.0.1", "port": 0},
                }
            )
        )
        with inside(link.gnb):
            gen = FrameGenerator("gnb0", [f for _, _, f in uplink_frames(1000)])
        for k in range(starts):
            proc, seconds = _start(config)
            try:
                startup.append(seconds)
                if k == starts - 1:  # one idle and load measurement, on the last start
                    time.sleep(settle_s)
                    idle_cpu.append(_cpu_percent(proc.pid, idle_s))
                    idle_rss.append(_rss_mb(proc.pid))
                    c0, t0 = _cpu_s(proc.pid), time.perf_counter()
                    sent = gen.paced(int(50_000 * load_s), 50_000)
                    load_cpu.append(100 * (_cpu_s(proc.pid) - c0) / (time.perf_counter() - t0))
                    load_rss.append(_rss_mb(proc.pid))
                    load_pps.append(sent.pps)
            finally:
                proc.terminate()
                proc.wait(30)
        gen.close()
    load = f"{load_pps[0]:.0f} frames/s, 3 000 sessions"
    return [
        figure(
            "agent_startup_s",
            startup,
            "s",
            what="launch to API answering, bcc compilation included",
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
            goal=150.0,
            goal_is="at_most",
            what="resident memory after start-up, idle",
        ),
        figure("agent_load_cpu_percent", load_cpu, "% of a core", what=f"under load: {load}"),
        figure("agent_load_rss_mb", load_rss, "MB", what=f"resident memory under load: {load}"),
    ]
