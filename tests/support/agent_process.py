"""The agent as its own process (`sauron run --config`), for the tests that
drive it like an operator: start it, read its API address, wait for its
intervals, and check that it left no program attached."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from hooks import tcx_program_ids

from sauron.commands.client import SauronClient

REPO = Path(__file__).resolve().parents[2]
#: pid -> what an agent printed after "serving" in the same read: its output
#: continues there (stop_agent puts it first)
_UNREAD: dict[int, str] = {}


#: a liveness bound, not a speed claim: start-up compiles the programs
#: (~13 s on an idle 2-CPU machine, more than twice that beside a testbed's
#: traffic generator and UPF; `agent_startup_s` in bench/ is the figure)
STARTUP_BOUND_S = 90.0


def start_agent(
    config: Path,
    within_s: float = STARTUP_BOUND_S,
    wrapper: Sequence[str] = (),
    seen: list[str] | None = None,
    options: Sequence[str] = (),
    environment: Mapping[str, str] | None = None,
) -> tuple[subprocess.Popen[str], str]:
    """`sauron run --config CONFIG [OPTIONS]`, once it prints that it
    serves: (the process, the API's base URL). `wrapper` runs before it and
    execs it (the command follows its arguments); `seen` gets what it
    printed until then; `environment` replaces the process's."""
    proc = subprocess.Popen(
        [*wrapper, sys.executable, "-m", "sauron", "run", "--config", str(config), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
        env=environment,
    )
    assert proc.stdout is not None
    # the descriptor itself, not the text wrapper: a wrapper that read two
    # lines at once keeps the second where select() cannot see it
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + within_s
    seen = [] if seen is None else seen
    pending = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            chunk = os.read(fd, 65536)
            pending += chunk
            while b"\n" in pending:
                raw, pending = pending.split(b"\n", 1)
                line = raw.decode(errors="replace") + "\n"
                seen.append(line)
                if line.startswith("serving "):
                    _UNREAD[proc.pid] = pending.decode(errors="replace")
                    return proc, line.split()[1].removesuffix("/api/v1/slices")
            if not chunk:
                break  # it closed its output: it ended
        if proc.poll() is not None and not select.select([fd], [], [], 0)[0]:
            break
    proc.kill()
    raise AssertionError("the agent did not come up:\n" + "".join(seen))


def links_with_programs(ns: str) -> list[str]:
    found = []
    for link in ("n3", "n6"):
        shown = subprocess.run(
            ["ip", "-n", ns, "-d", "link", "show", link], capture_output=True, text=True
        ).stdout
        filters = "".join(
            subprocess.run(
                ["ip", "netns", "exec", ns, "tc", "filter", "show", "dev", link, side],
                capture_output=True,
                text=True,
            ).stdout
            for side in ("ingress", "egress")
        )
        tcx = tcx_program_ids(ns, link, "ingress") + tcx_program_ids(ns, link, "egress")
        if "xdp" in shown or filters.strip() or tcx:
            found.append(link)
    return found


@contextmanager
def veth_namespace(ns: str) -> Iterator[str]:
    """A namespace holding a veth pair n3 <-> n6, up: links the agent can
    attach to when a test needs the process, not traffic. Removed on exit."""
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(
            ["ip", "-n", ns, "link", "add", "n3", "type", "veth", "peer", "name", "n6"],
            check=True,
        )
        for link in ("n3", "n6"):
            subprocess.run(["ip", "-n", ns, "link", "set", link, "up"], check=True)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def agent_config(path: Path, ns: str, **more: Any) -> Path:
    """An agent configuration on the namespace's n3 and n6, serving on a
    free loopback port, energy off unless `more` says otherwise."""
    config: dict[str, Any] = {
        "node": "node-test",
        "interval_s": 0.2,
        "interfaces": [
            {"name": "n3", "role": "n3", "netns": ns},
            {"name": "n6", "role": "n6", "netns": ns},
        ],
        "service": {"port": 0},
        "energy": {"enabled": False},
        # its saved reading beside the configuration, removed with it
        "datapath": {"state_dir": str(path.parent / "agent-state")},
        **more,
    }
    # a degraded slice's pcapng files beside it too, unless `more` says where
    evidence = {"directory": str(path.parent / "evidence")}
    config["diagnosis"] = {"evidence": evidence, **more.get("diagnosis", {})}
    path.write_text(yaml.safe_dump(config))
    return path


async def next_interval(api: SauronClient, interval_s: float | None = None) -> float:
    """Waits for the agent's next interval to end; returns its end time.
    Given the agent's interval, it sleeps until shortly before that end is
    due (the agent sleeps a whole interval after each tick, so it is never
    sooner) instead of asking all along: asking every 12 ms cost the agent
    6 % of a CPU on this 2-CPU machine (1 % asking near the end), beside the
    traffic it measures, and every 5 ms nears its limit of 100 requests a
    second per client."""
    current = (await api.energy()).until
    if interval_s is not None and current is not None:
        await asyncio.sleep(max(0.0, current + interval_s - time.time() - 0.05))
    while True:
        await asyncio.sleep(0.005)
        until = (await api.energy()).until
        if until is not None and until != current:
            return until


def stop_agent(proc: subprocess.Popen[str], within_s: float = 20) -> str:
    """SIGTERM, then its output once it exited (killed if it does not)."""
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=within_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return _UNREAD.pop(proc.pid, "") + out


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over the agent's UNIX socket (service.socket)."""

    def __init__(self, path: Path, timeout: float = 10) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def unix_get_json(path: Path, route: str) -> Any:
    """GET `route` over the UNIX socket at `path`; the answer's JSON."""
    conn = UnixHTTPConnection(path)
    try:
        conn.request("GET", route)
        response = conn.getresponse()
        assert response.status == 200, (route, response.status, response.read())
        return json.loads(response.read())
    finally:
        conn.close()
