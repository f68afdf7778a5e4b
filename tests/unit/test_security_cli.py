"""The async client's security calls and `sauron security` against the
service on loopback: the client's typed answers hold the route's values;
the command prints the frames per slice and check with their rate, then the
detections, reads one slice with --slice and a window with --since/--last,
and --json is the route's document. The agent is the runtime over a data
plane the test feeds, its detections from a real detector behind a
stand-in for the agent's Securing (security_agent)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from security_agent import START, Agent, frames
from served import serve_in_thread

from sauron.commands.client import ApiError, SauronClient
from sauron.commands.views import with_unit
from sauron.service.app import ServiceOptions, create_app

REPO = Path(__file__).resolve().parents[2]
TOKEN = "security-cli-token-0123"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Agent, str]]:
    agent = Agent()
    with serve_in_thread(create_app(agent.runtime, ServiceOptions(token=TOKEN))) as url:
        yield agent, url


def sauron(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sauron", "security", *args, "--url", url],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "SAURON_TOKEN": TOKEN},
    )


def test_the_client_reads_both_routes(served: tuple[Agent, str]) -> None:
    _, url = served

    async def body() -> None:
        async with SauronClient(url, token=TOKEN) as api:
            report = await api.security(since=START + 2)
            assert report.slices["embb"].frames is not None
            assert report.slices["embb"].frames.unknown_teid == 10
            assert [e.kind for e in report.events] == ["spoofing_ue"]
            one = await api.slice_security("embb")
            assert one.frames is not None and one.frames.model_dump() == frames(
                unknown_teid=15, ue_source_spoofed=1
            )
            assert one.per_s is not None and one.per_s.unknown_teid == 15 / 4
            assert [(e.kind, e.teids[0]) for e in one.events] == [("teid_scan", "0x0f000001")]
            with pytest.raises(ApiError) as missing:
                await api.slice_security("nope")
            assert missing.value.status == 404

    asyncio.run(body())


def test_the_command_prints_frames_per_slice_and_check_then_detections(
    served: tuple[Agent, str],
) -> None:
    _, url = served
    done = sauron(url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "security checks on: unknown peers counted (1 configured, 0 learned), " + (
        "1 protected prefix(es)"
    )
    assert lines[1].startswith("detections: a TEID scan from 4 unknown TEIDs a second")
    assert "(4.0 s, 3 interval(s))" in lines[2]
    head = lines[4]
    assert head.split()[0] == "slice" and "spoofed UE source" in head and "unknown peer" in head
    rows = {line.split()[0]: line for line in lines[5:9]}
    assert set(rows) == {"embb", "urllc", "mmtc", "unclassified"}

    def cell(name: str, title: str) -> str:
        """The column under `title`, right-aligned to its end."""
        end = head.index(title) + len(title)
        start = max(head.rfind("  ", 0, head.index(title)), 0)
        return rows[name][start:end].strip()

    assert cell("embb", "unknown TEID") == "15 (3.75/s)"
    assert cell("embb", "spoofed UE source") == "1 (0.25/s)"
    assert cell("embb", "GTP in GTP") == "0"
    assert cell("urllc", "unknown peer") == "4 (1/s)"
    detections = lines[lines.index("detections (2), oldest first") + 2 :]
    assert detections[0].split()[:5] == ["teid_scan", "embb", "10.10.3.7", "15", "5"]
    assert "ended" in detections[0] and "0x0f000001 0x0f000002" in detections[0]
    assert detections[1].split()[:5] == ["spoofing_ue", "urllc", "10.10.3.100", "4", "2"]
    assert "ongoing" in detections[1]

    one = sauron(url, "--slice", "urllc", "--since", str(START + 2))
    assert one.returncode == 0, one.stderr
    (row,) = [line for line in one.stdout.splitlines() if line.startswith("urllc")]
    assert "4 (1.33/s)" in row and "embb" not in one.stdout
    assert "detections (1)" in one.stdout and "spoofing_ue" in one.stdout

    # the last minute (the test's clock is long past): nothing measured in it
    recent = sauron(url, "--last", "60")
    assert recent.returncode == 0, recent.stderr
    assert recent.stdout.splitlines()[2] == "no interval measured in the window"
    # the detections are told all the same (none overlaps the last minute)
    assert recent.stdout.splitlines()[4] == "no detection in the window"

    as_json = sauron(url, "--json", "--slice", "embb")
    doc = json.loads(as_json.stdout)
    assert doc["frames"]["unknown_teid"] == 15 and doc["events"][0]["kind"] == "teid_scan"

    unknown = sauron(url, "--slice", "nope")
    assert unknown.returncode == 1 and "404" in unknown.stderr and "nope" in unknown.stderr


def test_a_security_limit_is_shown_in_frames_a_second() -> None:
    """`sauron sla` writes a violation's limit and worst value in its unit."""
    assert with_unit("max_security_events_per_s.unknown_teid", 1.5) == "1.5 frames/s"
