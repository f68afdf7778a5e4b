"""The agent as its own process (`sauron run --config`), for the tests that
drive it like an operator: start it, read its API address, and check that
it left no program attached."""

from __future__ import annotations

import select
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


#: a liveness bound, not a speed claim: start-up compiles the programs
#: (~13 s on an idle 2-CPU machine, more than twice that beside a testbed's
#: traffic generator and UPF; `agent_startup_s` in bench/ is the figure)
STARTUP_BOUND_S = 90.0


def start_agent(
    config: Path, within_s: float = STARTUP_BOUND_S, wrapper: Sequence[str] = ()
) -> tuple[subprocess.Popen[str], str]:
    """`sauron run --config CONFIG`, once it prints that it serves: (the
    process, the API's base URL). `wrapper` runs before it and execs it (the
    command follows its arguments)."""
    proc = subprocess.Popen(
        [*wrapper, sys.executable, "-m", "sauron", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + within_s
    seen = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            seen.append(line)
            if line.startswith("serving "):
                return proc, line.split()[1].removesuffix("/api/v1/slices")
        if proc.poll() is not None:
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
        if "xdp" in shown or filters.strip():
            found.append(link)
    return found
