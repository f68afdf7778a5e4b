"""A query command with no agent at the address: one line saying so and
what to do, or under --json the same as a JSON document; exit 1."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def nobody_listening() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def sauron(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sauron", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


def test_no_agent_is_said_with_what_to_do() -> None:
    url = nobody_listening()
    done = sauron("slices", "--url", url)
    assert done.returncode == 1 and done.stdout == ""
    said, hint = done.stderr.splitlines()
    assert said.startswith(f"sauron slices: cannot reach the agent: {url}")
    assert "sauron run --config FILE" in hint and "SAURON_URL" in hint


def test_no_agent_under_json_is_a_json_document() -> None:
    url = nobody_listening()
    done = sauron("sla", "--url", url, "--json")
    assert done.returncode == 1
    error = json.loads(done.stdout)["error"]
    assert error["status"] == 0 and error["title"] == "cannot reach the agent"
    assert url in error["detail"] and "sauron run" in error["hint"]


def test_a_mistyped_command_or_choice_gets_the_nearest_one() -> None:
    wrong = sauron("kpi")
    assert wrong.returncode == 2 and "did you mean 'kpis'?" in wrong.stderr, wrong.stderr
    wrong = sauron("sessions", "--state", "actve")
    assert wrong.returncode == 2 and "did you mean 'active'?" in wrong.stderr, wrong.stderr
    far = sauron("zzzzzz")
    assert far.returncode == 2 and "did you mean" not in far.stderr, far.stderr
