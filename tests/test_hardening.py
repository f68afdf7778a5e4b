"""The agent's promises where an operator meets them: a real `sauron run`
process on loopback, driven with the faults, clients and inputs that once
stalled it, lost points or answered 500."""

from __future__ import annotations

import http.client
import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from agent_process import REPO, agent_config, start_agent, stop_agent, veth_namespace
from timeseries import VictoriaMetrics

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


def _sauron(*args: str, within_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sauron", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=within_s,
    )


PASSWORD = "s3cret-Pa55"


def test_a_password_in_the_influx_url_is_shown_nowhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """user:password@ in the URL (a proxy's basic auth): the points are
    written, and /readyz, the agent's log and the doctor show user:***@."""
    srv = VictoriaMetrics(tmp_path / "vm")
    srv.start()
    url = srv.url.replace("http://", f"http://writer:{PASSWORD}@")
    influx = {
        "url": url,
        "org": srv.org,
        "bucket": srv.bucket,
        "spool_dir": str(tmp_path / "spool"),
        "flush_interval_s": 0.2,
    }
    try:
        with veth_namespace(f"sauron-pw-{os.getpid()}") as ns:
            config = agent_config(tmp_path / "agent.yaml", ns, influx=influx)
            monkeypatch.setenv("SAURON_LOG_LEVEL", "info")
            started: list[str] = []
            proc, api = start_agent(config, seen=started)
            try:
                conn = http.client.HTTPConnection(api.removeprefix("http://"), timeout=10)
                _until(conn, "/readyz", 200, within_s=20)
                deadline = time.monotonic() + 20
                while True:
                    body = json.loads(_get(conn, "/readyz")[1])
                    if body["publisher"]["points_written"] > 0 or time.monotonic() > deadline:
                        break
                    time.sleep(0.2)
                conn.close()
            finally:
                out = "".join(started) + stop_agent(proc)
            doctor = _sauron("doctor", "--influx", "--config", str(config))
        assert body["publisher"]["points_written"] > 0, body
        assert body["publisher"]["url"].startswith("http://writer:***@127.0.0.1:"), body
        assert PASSWORD not in json.dumps(body)
        assert proc.returncode == 0 and "writer:***@" in out and PASSWORD not in out, out
        assert "writer:***@" in doctor.stdout and PASSWORD not in doctor.stdout + doctor.stderr
        assert "Traceback" not in doctor.stderr and doctor.returncode == 0, doctor
    finally:
        srv.stop()


def test_credentials_in_the_url_beside_a_token_are_refused_at_start(tmp_path: Path) -> None:
    """The client refuses every write with both: the agent must not start
    and lose every point; the error names the field and not the password."""
    token = tmp_path / "influx.token"
    token.write_text("t" * 32 + "\n")
    token.chmod(0o600)
    config = agent_config(
        tmp_path / "agent.yaml",
        "sauron-unused",
        influx={"url": f"http://writer:{PASSWORD}@127.0.0.1:8086", "token_file": str(token)},
    )
    for args in (("run", "--config", str(config)), ("doctor", "--influx", "--config", str(config))):
        done = _sauron(*args)
        said = done.stdout + done.stderr
        assert done.returncode != 0 and "Traceback" not in said, said
        assert "field influx" in said and "url holds credentials" in said, said
        assert PASSWORD not in said, said


def test_doctor_ends_against_a_server_that_never_answers(tmp_path: Path) -> None:
    """A listener that accepts and never says a word: the doctor reports a
    failed check within its bound instead of hanging."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        config = tmp_path / "agent.yaml"
        agent_config(
            config,
            "sauron-unused",
            influx={"url": f"http://127.0.0.1:{port}", "timeout_s": 1, "spool_dir": str(tmp_path)},
        )
        done = _sauron("doctor", "--influx", "--config", str(config), within_s=30)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done
    assert "influx_reachable" in done.stdout and "fail" in done.stdout.lower(), done.stdout
