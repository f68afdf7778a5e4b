"""The publisher's parts that need no time-series server: line protocol
(checked against influxdb-client's own encoder), the security points, the disk spool, the
settings and their environment, the retry policy, and how the publisher
answers a server that refuses (a small aiohttp server plays it: 401, 503
with Retry-After, 400, 413)."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st
from influxdb_client import Point, WritePrecision
from timeseries import Sample, flux_csv_samples, parse_line

from sauron.abi import layout
from sauron.abi.kpis import SECURITY_KPIS
from sauron.catalog import parse_catalog
from sauron.export.delivery.outcome import retry_after_seconds
from sauron.export.delivery.spool import Spool, SpoolError
from sauron.export.influx.checks import influx_checks
from sauron.export.influx.lineproto import PointError, line
from sauron.export.influx.points import snapshot_points, time_ns, violation_point
from sauron.export.influx.publisher import PUBLISHING, REJECTED, SPOOLING, Publisher, retry_delay
from sauron.export.influx.settings import (
    InfluxConfig,
    InfluxSettingsError,
    read_influx_token,
    with_environment,
)
from sauron.host.field_errors import field_problems
from sauron.kpi.quality import LossKpis
from sauron.kpi.records import SliceKpis, Snapshot
from sauron.kpi.sla import SlaTracker
from sauron.security.detect import TEID_SCAN, Detector, Observation

TOKEN = "tok-3f9c2a7e-never-in-a-log"

# -- line protocol ---------------------------------------------------------

names = st.text(
    alphabet=st.characters(codec="ascii", exclude_characters="\\\n\r\t"), min_size=1, max_size=12
).filter(lambda s: not s.startswith(("_", "#")) and s.strip() == s)
tag_values = names
field_values = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.text(alphabet=st.characters(codec="ascii", exclude_characters="\n\r"), max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(
    measurement=names,
    tags=st.dictionaries(names, tag_values, max_size=4),
    fields=st.dictionaries(names, field_values, min_size=1, max_size=4),
    stamp=st.integers(min_value=0, max_value=2**62),
)
def test_line_matches_influxdb_client(
    measurement: str, tags: dict[str, str], fields: dict[str, Any], stamp: int
) -> None:
    # influxdb-client sorts fields by key; the order means nothing to the server
    ours = line(measurement, tags, dict(sorted(fields.items())), stamp)
    p = Point(measurement)
    for k in sorted(tags):
        p = p.tag(k, tags[k])
    for k, v in fields.items():
        p = p.field(k, v)
    theirs = p.time(stamp, WritePrecision.NS).to_line_protocol()
    assert ours == theirs


def test_influxdb2_read_back_parses_flux_csv() -> None:
    """The read-back used with SAURON_TEST_INFLUXDB_URL, on a reply shaped as
    InfluxDB 2 documents its query CSV (two tables with different columns,
    annotation rows, a quoted tag value holding a comma, a string field)."""
    reply = (
        "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string,string\r\n"
        ",result,table,_start,_stop,_time,_value,_field,_measurement,node,slice\r\n"
        ",_result,0,1970-01-01T00:00:00Z,2026-11-24T20:00:00Z,2026-11-24T19:00:01.000001Z,5,packets_in,sauron_traffic,node-a,embb\r\n"
        ',_result,0,1970-01-01T00:00:00Z,2026-11-24T20:00:00Z,2026-11-24T19:00:02Z,7.5,packets_in,sauron_traffic,"node,b",embb\r\n'
        "\r\n"
        ",result,table,_start,_stop,_time,_value,_field,_measurement,node,slice,le\r\n"
        ",_result,1,1970-01-01T00:00:00Z,2026-11-24T20:00:00Z,2026-11-24T19:00:01Z,3,count,sauron_histogram,node-a,embb,0.25\r\n"
        ",_result,2,1970-01-01T00:00:00Z,2026-11-24T20:00:00Z,2026-11-24T19:00:01Z,ok,sla_status,sauron_slice,node-a,embb,\r\n"
    )
    samples = flux_csv_samples(reply)
    t0 = 1795546801000  # 2026-11-24T19:00:01Z in ms
    assert samples == [
        Sample("sauron_traffic", (("node", "node-a"), ("slice", "embb")), "packets_in", t0, 5.0),
        Sample(
            "sauron_traffic", (("node", "node,b"), ("slice", "embb")), "packets_in", t0 + 1000, 7.5
        ),
        Sample(
            "sauron_histogram",
            (("le", "0.25"), ("node", "node-a"), ("slice", "embb")),
            "count",
            t0,
            3.0,
        ),
    ]


def test_line_leaves_out_missing_and_refuses_empty() -> None:
    assert line("m", {"a": "x"}, {"f": None, "g": float("nan"), "h": 1.5}, 7) == "m,a=x h=1.5 7"
    with pytest.raises(PointError):
        line("m", {"a": ""}, {"f": 1}, 7)
    with pytest.raises(PointError):
        line("m", {}, {"f": None}, 7)


# -- SLA events --------------------------------------------------------------

EVENT_CATALOG = parse_catalog(
    {"slices": [{"name": "urllc", "snssai": {"sst": 2, "sd": 1}, "sla": {"max_loss_ratio": 0.01}}]},
    "test",
)


def losing(lost: int | None) -> dict[str, SliceKpis]:
    """An interval of URLLC with `lost` of 100 sequence numbers lost; None:
    no traffic, nothing measured."""
    k = SliceKpis(name="urllc", slice_id=1, snssai="2-000001")
    if lost is not None:
        k.uplink.loss = LossKpis(sequence_lost=lost, sequence_received=100 - lost)
        k.uplink.loss.settle_ratios()
    return {"urllc": k}


def test_violation_points_say_why_a_violation_closed() -> None:
    tracker = SlaTracker(EVENT_CATALOG, window=3, open_bad=2, close_good=2)
    written: list[str] = []
    for at, lost in enumerate([5, 5, 0, 0, 5, 5, None, None, None]):
        tracker.observe(losing(lost), at=1_800_000_000.0 + at)
        written += [
            violation_point("upf-1", v, change, "2-000001") for change, v in tracker.changes
        ]
    changes = [dict(parse_line(text)[0].tags)["change"] for text in written]
    assert changes == ["opened", "closed", "opened", "closed"]
    opened, recovered, _, unmeasured = written
    assert "end_reason" not in opened
    assert 'end_reason="recovered"' in recovered
    assert 'end_reason="not measured"' in unmeasured
    # at the time it closed: the third interval without a check
    assert parse_line(unmeasured)[0].time_ms == (1_800_000_000 + 8) * 1000
    assert "ended_at" in {sample.field for sample in parse_line(unmeasured)}
    # no diagnosis made: no field; one made: its sentence, as a string field
    assert "diagnosis" not in {sample.field for sample in parse_line(opened)}
    v = tracker.events[0]
    v.diagnosis = 'urllc: loss 5.00 %, of which 5 "radio side" gaps (100 %)'
    written_line = violation_point("upf-1", v, "closed", "2-000001")
    assert (
        'diagnosis="urllc: loss 5.00 %, of which 5 \\"radio side\\" gaps (100 %)"' in written_line
    )


# -- security ----------------------------------------------------------------


def test_security_counts_are_one_point_per_slice_with_the_checks_on() -> None:
    """An integer field per kind in the table's order, the slice's tags;
    no point for a slice whose checks are off (None)."""
    embb = SliceKpis(name="embb", slice_id=1, snssai="1-000001")
    embb.security = {k.name: n for n, k in enumerate(SECURITY_KPIS, start=1)}
    off = SliceKpis(name="urllc", slice_id=2, snssai="2")
    snap = Snapshot(time=1_800_000_000.5, interval_s=1.0, slices={"embb": embb, "urllc": off})
    found = [t for t in snapshot_points("upf-1", snap) if t.startswith("sauron_security")]
    assert found == [
        "sauron_security,node=upf-1,sd=000001,slice=embb,sst=1 "
        "ue_source_spoofed=1i,unknown_teid=2i,gtp_in_gtp=3i,inner_to_core=4i,unknown_peer=5i "
        f"{time_ns(snap.time)}"
    ]


def scan_at(detector: Detector, at: float, teids: range) -> None:
    detector.feed(
        [
            Observation(layout.SEC_UNKNOWN_TEID, teid, "192.0.2.9", "192.0.2.9", 1, at, at, 2)
            for teid in teids
        ],
        at,
    )


def test_a_growing_detection_overwrites_its_one_point() -> None:
    """A scan as it opens, grows and ends: one series (its tags, the event
    id among them) at one time (first seen), the fields of the latest."""
    embb = SliceKpis(name="embb", slice_id=1, snssai="1-000001")
    detector = Detector(scan_threshold=3, quiet_s=5.0)
    t0 = 1_800_000_000.25
    written = []
    for at, teids in ((t0, range(0x500001, 0x500004)), (t0 + 2, range(0x500004, 0x500006))):
        scan_at(detector, at, teids)
        (event,) = detector.events()
        snap = Snapshot(at, 1.0, {"embb": embb}, security_events=[event])
        written += [t for t in snapshot_points("upf-1", snap) if t.startswith("sauron_security")]
    ended = detector.feed([], t0 + 10)
    snap = Snapshot(t0 + 10, 1.0, {"embb": embb}, security_events=ended)
    written += [t for t in snapshot_points("upf-1", snap) if t.startswith("sauron_security")]
    assert written == [
        "sauron_security_event,event=1,kind=teid_scan,node=upf-1,sd=000001,"
        f'slice=embb,sst=1 peer="192.0.2.9",count={2 * n}i,distinct={n}i,teids="{teids}",'
        f"last_seen={last!r},ongoing={ongoing} {time_ns(t0)}"
        for n, teids, last, ongoing in (
            (3, "0x00500001,0x00500002,0x00500003", t0, "true"),
            (5, "0x00500001,0x00500002,0x00500003,0x00500004,0x00500005", t0 + 2, "true"),
            (5, "0x00500001,0x00500002,0x00500003,0x00500004,0x00500005", t0 + 2, "false"),
        )
    ]
    assert detector.opened == {(1, TEID_SCAN): 1}


# -- spool -----------------------------------------------------------------


def test_spool_keeps_order_across_reopen_and_ignores_a_cut_write(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    spool.append(["m f=1i 1", "m f=2i 2"])
    spool.append(["m f=3i 3"])
    spool.close()
    (tmp_path / "0000000000000003.lp.partial").write_text("m f=4i 4\n")  # killed mid-write
    again = Spool(tmp_path, 1 << 20)
    assert (again.batches, again.points) == (2, 3)
    assert not list(tmp_path.glob("*.partial"))
    first = again.oldest()
    assert first is not None and first.lines == ["m f=1i 1", "m f=2i 2"]
    again.remove(first.seq)
    nxt = again.oldest()
    assert nxt is not None and nxt.lines == ["m f=3i 3"]
    again.append(["m f=5i 5"])  # numbering continues after the batches found
    again.remove(nxt.seq)
    last = again.oldest()
    assert last is not None and last.lines == ["m f=5i 5"] and last.seq > nxt.seq
    again.close()


def test_spool_cap_drops_oldest_and_counts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    batch = [f"m f={i}i {i}" for i in range(10)]
    size = len("".join(f"{x}\n" for x in batch).encode())
    spool = Spool(tmp_path, size * 3)
    for _ in range(3):
        assert spool.append(batch) == 0
    with caplog.at_level(logging.ERROR, logger="sauron"):
        assert spool.append(batch) == 10
    assert spool.dropped == 10 and spool.batches == 3 and spool.size <= size * 3
    assert "points dropped" in caplog.text
    # a batch bigger than the whole spool is dropped whole, the rest kept
    assert spool.append(batch * 4) == 40
    assert spool.dropped == 50 and spool.batches == 3
    spool.close()


def test_spool_is_held_by_one_agent(tmp_path: Path) -> None:
    first = Spool(tmp_path, 1 << 20)
    with pytest.raises(SpoolError, match="in use by another agent"):
        Spool(tmp_path, 1 << 20)
    first.close()
    Spool(tmp_path, 1 << 20).close()


# -- settings --------------------------------------------------------------


def test_environment_wins_and_token_stays_secret(tmp_path: Path) -> None:
    base = InfluxConfig(
        url="http://db.example:8086", org="a", bucket="b", token_file=tmp_path / "t"
    )
    env = {
        "SAURON_INFLUX_URL": "https://influx.example:8086",
        "SAURON_INFLUX_ORG": "operator",
        "SAURON_INFLUX_BUCKET": "slices",
        "SAURON_INFLUX_TOKEN": TOKEN,
    }
    cfg = with_environment(base, env)
    assert (cfg.url, cfg.org, cfg.bucket) == ("https://influx.example:8086", "operator", "slices")
    assert cfg.token_file is None and read_influx_token(cfg) == TOKEN
    assert TOKEN not in repr(cfg) and TOKEN not in str(cfg.model_dump())
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    from_file = with_environment(
        InfluxConfig(token="x"), {"SAURON_INFLUX_TOKEN_FILE": str(token_file)}
    )
    assert from_file.token is None and read_influx_token(from_file) == TOKEN
    assert not with_environment(InfluxConfig(), {}).enabled


def test_bad_settings_name_the_variable_or_field(tmp_path: Path) -> None:
    with pytest.raises(InfluxSettingsError) as bad:
        with_environment(InfluxConfig(), {"SAURON_INFLUX_URL": "influx:8086"})
    assert "SAURON_INFLUX_URL" in str(bad.value) and "field url" in str(bad.value)
    with pytest.raises(ValueError, match="token or token_file"):
        InfluxConfig(token="x", token_file=tmp_path / "t")
    with pytest.raises(InfluxSettingsError, match="cannot read the InfluxDB token file"):
        read_influx_token(InfluxConfig(token_file=tmp_path / "missing"))


# -- retry policy ----------------------------------------------------------


def test_retry_delay_doubles_with_jitter_and_honours_retry_after() -> None:
    low = [retry_delay(n, 1.0, 60.0, draw=lambda: 0.0) for n in range(1, 9)]
    high = [retry_delay(n, 1.0, 60.0, draw=lambda: 1.0) for n in range(1, 9)]
    assert high == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert low == [h / 2 for h in high]
    assert retry_delay(1, 1.0, 60.0, retry_after=30.0, draw=lambda: 1.0) == 30.0
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Wed, 25 Nov 2026 00:00:10 GMT", now=1795564800.0) == 10.0
    assert retry_after_seconds("soon") is None


# -- against a server that refuses ------------------------------------------


class FakeServer:
    """Answers /api/v2/write from a script of statuses (then 204), and keeps
    every request: time, status given, lines."""

    def __init__(self, script: list[tuple[int, dict[str, str]]], max_lines: int | None = None):
        self.script = list(script)
        self.max_lines = max_lines
        self.requests: list[tuple[float, int, list[str], str]] = []
        self.accepted: list[str] = []
        self.delay_s = 0.0  # a slow server: each answer waits this long

    async def write(self, request: web.Request) -> web.Response:
        body = (await request.read()).decode()
        lines = [x for x in body.split("\n") if x]
        auth = request.headers.get("Authorization", "")
        if self.max_lines is not None and len(lines) > self.max_lines:
            status, headers = 413, {}
        elif self.script:
            status, headers = self.script.pop(0)
        else:
            status, headers = 204, {}
        self.requests.append((time.monotonic(), status, lines, auth))
        await asyncio.sleep(self.delay_s)
        if status == 204:
            self.accepted += lines
            return web.Response(status=204)
        return web.json_response(
            {"code": "refused", "message": f"scripted {status}"}, status=status, headers=headers
        )


def run_against(
    server: FakeServer,
    tmp: Path,
    body: Callable[[Publisher], Awaitable[None]],
    **overrides: Any,
) -> Publisher:
    async def go() -> Publisher:
        app = web.Application()
        app.router.add_post("/api/v2/write", server.write)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        cfg = InfluxConfig(
            url=f"http://127.0.0.1:{port}",
            spool_dir=tmp / "spool",
            flush_interval_s=0.05,
            retry_first_s=0.05,
            retry_max_s=0.2,
            **overrides,
        )
        publisher = Publisher(cfg, "node-a", TOKEN)
        await publisher.start()
        try:
            await body(publisher)
        finally:
            await publisher.stop()
            await runner.cleanup()
        return publisher

    return asyncio.run(go())


def points(first: int, n: int) -> list[str]:
    return [
        f"sauron_traffic,node=a packets_in={i}i {1_700_000_000_000_000_000 + i}"
        for i in range(first, first + n)
    ]


async def offer_for(publisher: Publisher, seconds: float, start: int = 0) -> int:
    """Offers numbered points for a while; returns the number after the last."""
    offered = start
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        publisher.offer(points(offered, 5))
        offered += 5
        await asyncio.sleep(0.05)
    return offered


def test_bad_token_is_one_clear_error_not_a_retry_storm(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = FakeServer([(401, {})] * 1000)
    offered = 0

    async def body(p: Publisher) -> None:
        nonlocal offered
        offered = await offer_for(p, 1.5)
        assert p.stats.state == REJECTED

    with caplog.at_level(logging.INFO, logger="sauron"):
        publisher = run_against(server, tmp_path, body)
    # one attempt; the next waits rejected_retry_s (300 s by default)
    assert len(server.requests) == 1
    assert server.requests[0][3] == f"Token {TOKEN}"
    refusals = [r for r in caplog.records if "refused the writes" in r.getMessage()]
    assert len(refusals) == 1 and getattr(refusals[0], "status", None) == 401
    assert TOKEN not in caplog.text
    # nothing lost: every point waits in the spool for a fixed token
    spool = Spool(tmp_path / "spool", 1 << 30)
    assert spool.points == offered and publisher.stats.points_written == 0
    spool.close()


def test_unavailable_server_is_retried_after_retry_after_and_nothing_lost(tmp_path: Path) -> None:
    server = FakeServer([(503, {"Retry-After": "1"}), (429, {"Retry-After": "1"})])
    offered = 0

    async def body(p: Publisher) -> None:
        nonlocal offered
        offered = await offer_for(p, 1.0)
        assert p.stats.state == SPOOLING
        deadline = time.monotonic() + 10
        while p.spool.points and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert p.stats.state == PUBLISHING
        offered = await offer_for(p, 0.3, start=offered)

    publisher = run_against(server, tmp_path, body)
    times = [t for t, _, _, _ in server.requests]
    assert [s for _, s, _, _ in server.requests[:3]] == [503, 429, 204]
    assert times[1] - times[0] >= 1.0 and times[2] - times[1] >= 1.0
    # every point once, in the order offered
    assert server.accepted == points(0, offered)
    assert publisher.stats.retries == 2 and publisher.stats.points_written == offered
    assert publisher.spool.points == 0


def test_refused_batch_is_dropped_and_counted_others_go_on(tmp_path: Path) -> None:
    server = FakeServer([(400, {})])

    async def body(p: Publisher) -> None:
        p.offer(points(0, 3))
        await asyncio.sleep(0.3)
        p.offer(points(3, 3))
        await asyncio.sleep(0.3)

    publisher = run_against(server, tmp_path, body)
    assert server.accepted == points(3, 3)
    assert publisher.stats.points_dropped == {"refused_400": 3}
    assert len(server.requests) == 2


def test_too_large_batch_is_split(tmp_path: Path) -> None:
    server = FakeServer([], max_lines=40)

    async def body(p: Publisher) -> None:
        p.offer(points(0, 150))
        await asyncio.sleep(0.5)

    publisher = run_against(server, tmp_path, body, batch_size=150)
    assert sorted(server.accepted) == sorted(points(0, 150))
    assert len(server.accepted) == 150 and not publisher.stats.points_dropped


def test_queue_bound_spills_to_the_spool(tmp_path: Path) -> None:
    server = FakeServer([])

    async def body(p: Publisher) -> None:
        p.offer(points(0, 250))  # the loop has not run: 150 over the bound
        assert p.spool.points == 150
        await asyncio.sleep(0.5)

    publisher = run_against(server, tmp_path, body, queue_points=100)
    assert sorted(server.accepted) == sorted(points(0, 250)) and len(server.accepted) == 250
    # once the spool holds points, later batches queue behind them (order kept)
    assert publisher.stats.points_replayed == publisher.stats.points_spooled >= 150
    assert publisher.spool.points == 0


def test_shutdown_replays_until_its_deadline_and_the_next_start_does_the_rest(
    tmp_path: Path,
) -> None:
    left_by_earlier_run = Spool(tmp_path / "spool", 1 << 30)
    for n in range(40):
        left_by_earlier_run.append(points(n * 10, 10))
    left_by_earlier_run.close()
    server = FakeServer([])
    server.delay_s = 0.2  # 40 batches take 8 s; the shutdown allows 0.5 s

    async def stop_at_once(p: Publisher) -> None:
        p.offer(points(400, 10))

    run_against(server, tmp_path, stop_at_once, shutdown_timeout_s=0.5)
    written_before_exit = list(server.accepted)
    left = Spool(tmp_path / "spool", 1 << 30)
    assert 0 < len(server.requests) < 40, "the shutdown did not wait for the whole spool"
    assert len(written_before_exit) + left.points == 410, "nothing lost on the way out"
    left.close()

    server.delay_s = 0.0

    async def until_spool_empty(p: Publisher) -> None:
        deadline = time.monotonic() + 10
        while p.spool.points and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    publisher = run_against(server, tmp_path, until_spool_empty)
    assert publisher.spool.points == 0
    assert server.accepted == points(0, 410), "every point once, oldest first"


#: a publisher that queues what it is offered and is killed before it flushes
KILLED_BEFORE_FLUSH = """
import asyncio, os, signal, sys
from pathlib import Path
from sauron.export.influx.publisher import Publisher
from sauron.export.influx.settings import InfluxConfig

async def main():
    spool = Path(sys.argv[1])
    cfg = InfluxConfig(url="http://127.0.0.1:9", spool_dir=spool, flush_interval_s=300)
    publisher = Publisher(cfg, "node-a", "tok")
    await publisher.start()
    for n in range(4):  # four intervals' points, queued
        publisher.offer([
            f"sauron_traffic,node=a packets_in={i}i {1_700_000_000_000_000_000 + i}"
            for i in range(n * 5, n * 5 + 5)
        ])
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


def test_points_queued_when_the_agent_is_killed_are_written_by_the_next(tmp_path: Path) -> None:
    """SIGKILL between two flushes: the queue was journaled beside the
    spool, and the next start writes every point, once, in order."""
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_BEFORE_FLUSH, str(tmp_path / "spool")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    server = FakeServer([])

    async def until_spool_empty(p: Publisher) -> None:
        deadline = time.monotonic() + 10
        while p.spool.points and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    publisher = run_against(server, tmp_path, until_spool_empty)
    assert server.accepted == points(0, 20)
    assert publisher.stats.points_replayed == 20 and publisher.spool.points == 0
    # and nothing is left to write a second time
    again = run_against(FakeServer([]), tmp_path, until_spool_empty)
    assert again.stats.points_written == 0


def test_write_that_timed_out_is_resent_identical(tmp_path: Path) -> None:
    """The server takes the first write after the client gave up on it: the
    batch is sent again, line for line the same (same series, same
    timestamps), so InfluxDB overwrites the points instead of adding them."""
    server = FakeServer([])
    server.delay_s = 0.6

    async def body(p: Publisher) -> None:
        p.offer(points(0, 20))
        deadline = time.monotonic() + 10
        while len(server.requests) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        server.delay_s = 0.0
        while p.spool.points and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    publisher = run_against(server, tmp_path, body, timeout_s=0.2)
    first, again = server.requests[0][2], server.requests[1][2]
    assert first == again == points(0, 20)
    assert publisher.stats.retries >= 1 and publisher.stats.points_replayed == 20


@pytest.mark.kernel
def test_refusal_shows_in_readyz_metrics_and_doctor(
    tmp_path: Path, dataplane: Any, catalog: Any
) -> None:
    from aiohttp.test_utils import TestClient, TestServer
    from manual_clock import ManualClock

    from sauron.agent.runtime import AgentRuntime, ProgramMaps
    from sauron.export.influx.checks import influx_checks
    from sauron.service import schemas
    from sauron.service.app import create_app

    server = FakeServer([(401, {})] * 1000)
    clock = ManualClock(2_000_000.0)

    async def go() -> None:
        fake = web.Application()
        fake.router.add_post("/api/v2/write", server.write)

        async def ping(request: web.Request) -> web.Response:
            return web.Response(status=204)

        fake.router.add_get("/ping", ping)
        runner = web.AppRunner(fake)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        cfg = InfluxConfig(
            url=url, spool_dir=tmp_path / "spool", flush_interval_s=0.05, token=TOKEN
        )
        publisher = Publisher(cfg, "node-a", TOKEN)
        # the runtime is not started: the test ticks, the publisher runs
        runtime = AgentRuntime(
            catalog, ProgramMaps(dataplane, shortcut=False), clock=clock, exporters=[publisher]
        )
        await publisher.start(runtime.engine)
        async with TestClient(TestServer(create_app(runtime))) as client:
            clock.t += 1
            await asyncio.get_running_loop().run_in_executor(None, runtime.engine.tick)
            await asyncio.sleep(0.3)
            r = await client.get("/readyz")
            body = await r.json()
            assert r.status == 503, body
            schemas.Health.model_validate(body)
            assert body["publisher"]["state"] == REJECTED
            assert (
                body["publisher"]["spool_points"] > 0 and "401" in body["publisher"]["last_error"]
            )
            metrics = await (await client.get("/metrics")).text()
            assert 'sauron_publisher_state{state="rejected"} 1' in metrics
            assert "sauron_publisher_retries_total 1" in metrics
            assert TOKEN not in metrics and TOKEN not in str(body)
            # every sample stands under its own family's TYPE line
            family = ""
            for text in metrics.splitlines():
                if text.startswith("# TYPE "):
                    family = text.split()[2]
                elif text and not text.startswith("#"):
                    assert text.startswith(family), (family, text)
        await publisher.stop()
        # the doctor names the refusal and what to do
        checks = await asyncio.get_running_loop().run_in_executor(None, influx_checks, cfg)
        by_name = {c.name: c for c in checks}
        assert by_name["influx_reachable"].status == "pass"
        assert (
            by_name["influx_write"].status == "fail"
            and "token is refused" in by_name["influx_write"].remedy
        )
        assert "points" in by_name["influx_spool"].reason
        await runner.cleanup()

    asyncio.run(go())


def test_spool_that_cannot_be_written_counts_the_points(tmp_path: Path) -> None:
    server = FakeServer([(503, {})] * 1000)

    async def body(p: Publisher) -> None:
        p.offer(points(0, 4))
        await asyncio.sleep(0.2)  # the 503 sends the batch to the spool
        assert p.spool.points == 4
        for f in (tmp_path / "spool").glob("*.lp"):
            f.unlink()  # lost under the agent's feet
        p.spool.directory = tmp_path / "spool" / "gone"  # as if the disk went away
        p.offer(points(4, 3))
        await asyncio.sleep(0.3)
        assert p.stats.points_dropped.get("spool_write_failed") == 3

    publisher = run_against(server, tmp_path, body)
    # the vanished batch is counted when the replay finds it gone
    assert publisher.stats.points_dropped.get("spool_unreadable") == 4


def test_a_password_in_the_url_is_never_shown() -> None:
    """Credentials in the URL (a proxy's basic auth) are kept for the
    client and shown as *** wherever the settings are printed."""
    cfg = InfluxConfig(url="http://writer:pa55word@db.example:8086/", spool_dir=Path("/tmp/s"))
    assert cfg.url == "http://writer:pa55word@db.example:8086/"
    assert cfg.shown_url == "http://writer:***@db.example:8086/"
    assert "pa55word" not in repr(cfg) and "pa55word" not in str(cfg)
    with pytest.raises(ValueError, match="url holds credentials") as refused:
        InfluxConfig(url="http://writer:pa55word@db.example:8086", token="t")
    # what the agent prints of a refused configuration: the field and why
    problems = field_problems(refused.value)  # type: ignore[arg-type]
    assert problems and all("pa55word" not in p for p in problems), problems


def test_the_doctor_shows_no_password_the_client_quotes(tmp_path: Path) -> None:
    """The HTTP client's error for a URL it cannot use quotes the whole URL,
    password included: the doctor's reasons are cleaned of it."""
    cfg = InfluxConfig(
        url="http://writer:hunter2@127.0.0.1:99999", spool_dir=tmp_path, timeout_s=2.0
    )
    checks = influx_checks(cfg)
    said = " ".join(f"{c.reason} {c.remedy}" for c in checks)
    assert any(c.name == "influx_reachable" and c.status == "fail" for c in checks), said
    assert "hunter2" not in said and "writer:***@" in said, said


def test_a_session_without_a_qfi_is_written_without_the_field() -> None:
    """A TEID whose G-PDUs carried no PDU Session Container has no QFI: the
    session point leaves the field out, never writing an internal value."""
    from sauron.export.influx.points import session_points
    from sauron.kpi.sessions import SessionVolume

    kpis = SliceKpis(name="embb", slice_id=1, snssai="1")
    volumes = [
        SessionVolume(0x80000001, "10.45.0.2", None, 0, 5, 0, 500),
        SessionVolume(0x10001, "10.45.0.2", 9, 5, 0, 500, 0),
    ]
    fields: dict[str, set[str]] = {}
    for text in session_points("upf-1", kpis, volumes, 1_800_000_000_000_000_000):
        for sample in parse_line(text):
            fields.setdefault(dict(sample.tags)["teid"], set()).add(sample.field)
    assert set(fields) == {"0x80000001", "0x00010001"}
    assert "qfi" not in fields["0x80000001"] and "qfi" in fields["0x00010001"]
