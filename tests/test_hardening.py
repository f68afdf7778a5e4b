"""The agent's promises where an operator meets them: a real `sauron run`
process on loopback, driven with the faults, clients and inputs that once
stalled it, lost points or answered 500."""

from __future__ import annotations

import http.client
import json
import os
import resource
import time
from pathlib import Path

import pytest
from agent_process import agent_config, start_agent, stop_agent, veth_namespace

pytestmark = [pytest.mark.kernel, pytest.mark.netns]


def _get(conn: http.client.HTTPConnection, path: str) -> tuple[int, str]:
    conn.request("GET", path)
    r = conn.getresponse()
    return r.status, r.read().decode()


def _until(conn: http.client.HTTPConnection, path: str, status: int, within_s: float) -> str:
    deadline = time.monotonic() + within_s
    while True:
        got, body = _get(conn, path)
        if got == status:
            return body
        assert time.monotonic() < deadline, f"{path}: {got} {body}"
        time.sleep(0.2)


def _metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def test_an_agent_out_of_file_descriptors_says_so_and_measures_again(tmp_path: Path) -> None:
    """Every tick reads /proc and /sys for the energy estimate; with no
    file descriptor left the reading fails. The agent must stay up, count
    the failures, turn /readyz to 503 with the cause, and measure again once
    descriptors are back."""
    with veth_namespace(f"sauron-fd-{os.getpid()}") as ns:
        config = agent_config(
            tmp_path / "agent.yaml",
            ns,
            energy={"enabled": True, "watch": [{"name": "open5gs-upfd"}]},
        )
        proc, url = start_agent(config)
        try:
            # one connection opened before the descriptors run out
            conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
            _until(conn, "/readyz", 200, within_s=20)
            limits = resource.prlimit(proc.pid, resource.RLIMIT_NOFILE)
            resource.prlimit(proc.pid, resource.RLIMIT_NOFILE, (3, limits[1]))
            try:
                body = json.loads(_until(conn, "/readyz", 503, within_s=20))
                _, metrics = _get(conn, "/metrics")
            finally:
                resource.prlimit(proc.pid, resource.RLIMIT_NOFILE, limits)
            # the cause, as the first reading that failed reported it
            assert body["status"].startswith("tick failed"), body
            assert "OSError" in body["status"], body
            assert _metric(metrics, "sauron_tick_failures_total") >= 3
            frozen = body["last_interval"]
            again = json.loads(_until(conn, "/readyz", 200, within_s=20))
            assert again["last_interval"] > frozen
            conn.close()
        finally:
            out = stop_agent(proc)
        assert proc.returncode == 0, out
        assert "failed, tried again next interval" in out and "works again" in out
