"""The remote-write exporter's parts that need no time-series server: the
sample lines read back as the exposition wrote them, the WriteRequest
decoded by protoc (Debian's protobuf-compiler, an independent decoder) from
prompb's message definitions, the settings and their environment, and how
the exporter answers a receiver's statuses. victoria-metrics never answers
429, 401 or 413 on purpose, so a small aiohttp server on loopback stands in
for a receiver here (it decompresses each body with snappy and decodes it
with protoc); tests/e2e/test_remote_write_server.py writes to the real
victoria-metrics."""

from __future__ import annotations

import asyncio
import codecs
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import cramjam
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from sauron.agent.config import ConfigError, load_config
from sauron.export.delivery.journal import Journal
from sauron.export.delivery.lossless import REJECTED
from sauron.export.delivery.spool import Spool
from sauron.export.influx.settings import InfluxConfig
from sauron.export.prometheus import _labels
from sauron.export.remote_write.exporter import RemoteWriteExporter
from sauron.export.remote_write.protobuf import write_request
from sauron.export.remote_write.samples import Sample, SampleLineError, parse, stamped
from sauron.export.remote_write.settings import (
    RemoteWriteConfig,
    RemoteWriteSettingsError,
    read_credentials,
    with_environment,
)

TOKEN = "rw-7d1e9b4c-never-in-a-log"
PASSWORD = "pw-52aa0f1e-never-in-a-log"

#: prometheus/prompb types.proto and remote.proto, the messages remote write 1.0 sends
PROMPB = """
syntax = "proto3";
package prometheus;
message WriteRequest { repeated TimeSeries timeseries = 1; }
message TimeSeries { repeated Label labels = 1; repeated Sample samples = 2; }
message Label { string name = 1; string value = 2; }
message Sample { double value = 1; int64 timestamp = 2; }
"""


def protoc_decode(
    body: bytes, tmp: Path
) -> list[tuple[tuple[tuple[str, str], ...], list[tuple[int, float]]]]:
    """The series of a WriteRequest as protoc reads them, in order."""
    (tmp / "prompb.proto").write_text(PROMPB)
    done = subprocess.run(
        ["protoc", f"--proto_path={tmp}", "--decode=prometheus.WriteRequest", "prompb.proto"],
        input=body,
        capture_output=True,
        check=True,
    )
    series: list[tuple[tuple[tuple[str, str], ...], list[tuple[int, float]]]] = []
    blocks: list[str] = []
    fields: dict[str, str] = {}
    for raw in done.stdout.decode().splitlines():
        text = raw.strip()
        if text.endswith("{"):
            blocks.append(text[:-1].strip())
            if blocks == ["timeseries"]:
                series.append(((), []))
            fields = {}
        elif text == "}":
            block = blocks.pop()
            labels, points = series[-1]
            if block == "labels":
                # proto3 leaves a field out when it holds its default
                series[-1] = ((*labels, (fields.get("name", ""), fields.get("value", ""))), points)
            elif block == "samples":
                points.append((int(fields.get("timestamp", "0")), float(fields.get("value", "0"))))
        else:
            key, _, rest = text.partition(": ")
            if rest.startswith('"'):
                rest = codecs.escape_decode(rest[1:-1].encode())[0].decode()
            fields[key] = rest
    return series


# -- the lines and the encoding ------------------------------------------

label_values = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=10
)


@settings(max_examples=200, deadline=None)
@given(
    labels=st.dictionaries(
        st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), label_values, max_size=4
    ),
    value=st.one_of(st.integers(0, 2**53), st.floats(allow_nan=False)),
    stamp=st.integers(0, 2**45),
)
def test_a_stamped_exposition_line_reads_back_as_written(
    labels: dict[str, str], value: float, stamp: int
) -> None:
    """Whatever a label value holds (quotes, backslashes, newlines, any
    script), the line /metrics writes reads back to the same series."""
    labels.pop("__name__", None)
    text = f"sauron_x_total{_labels(**labels) if labels else ''} {value}\n"
    (line,) = stamped("# HELP sauron_x_total x\n# TYPE sauron_x_total counter\n" + text, stamp)
    assert parse(line) == Sample(
        tuple(sorted({**labels, "__name__": "sauron_x_total"}.items())), float(value), stamp
    )


def test_a_line_that_is_not_a_sample_is_refused() -> None:
    for text in ("sauron_x 1", 'sauron_x{a="1} 1 2', "sauron_x{a=1} 1 2", " 1 2", "x y 2"):
        with pytest.raises(SampleLineError):
            parse(text)


def test_protoc_decodes_the_write_request_as_sent(tmp_path: Path) -> None:
    samples = [
        parse('sauron_b{slice="embb",le="+Inf",snssai=""} 7 1700000000123'),
        parse('sauron_b{slice="embb",le="+Inf",snssai=""} 9 1700000000001'),
        parse('sauron_a{slice="caf\\"é\\\\\\n"} -2.5 -1'),
        parse("sauron_c +Inf 0"),
    ]
    series = protoc_decode(write_request(samples), tmp_path)
    assert series == [
        # labels sorted by name, the empty one left out; samples oldest first
        (
            (("__name__", "sauron_b"), ("le", "+Inf"), ("slice", "embb")),
            [(1700000000001, 9.0), (1700000000123, 7.0)],
        ),
        ((("__name__", "sauron_a"), ("slice", 'caf"é\\\n')), [(-1, -2.5)]),
        ((("__name__", "sauron_c"),), [(0, float("inf"))]),
    ]


def test_a_sample_given_twice_is_sent_once(tmp_path: Path) -> None:
    line = 'sauron_a{slice="embb"} 4 1700000000000'
    assert protoc_decode(write_request([parse(line), parse(line)]), tmp_path) == [
        ((("__name__", "sauron_a"), ("slice", "embb")), [(1700000000000, 4.0)])
    ]


# -- settings --------------------------------------------------------------


def test_environment_wins_and_secrets_stay_secret(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    base = RemoteWriteConfig(url="http://file:8428/api/v1/write", token=TOKEN)
    env = {
        "SAURON_REMOTE_WRITE_URL": "https://env:9090/api/v1/write",
        "SAURON_REMOTE_WRITE_TOKEN_FILE": str(token_file),
    }
    cfg = with_environment(base, env)
    assert cfg.url == "https://env:9090/api/v1/write" and cfg.token is None
    assert read_credentials(cfg) == (TOKEN, None)
    assert TOKEN not in repr(base) and TOKEN not in str(base)
    assert cfg.spool_dir == Path("/var/lib/sauron/spool/remote-write")

    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD)
    password_file.chmod(0o600)
    basic = with_environment(
        RemoteWriteConfig(url="http://vm:8428/api/v1/write"),
        {
            "SAURON_REMOTE_WRITE_USERNAME": "agent",
            "SAURON_REMOTE_WRITE_PASSWORD_FILE": str(password_file),
        },
    )
    assert read_credentials(basic) == (None, PASSWORD)
    assert PASSWORD not in repr(basic)


def test_bad_settings_name_the_variable_file_and_field(tmp_path: Path) -> None:
    with pytest.raises(RemoteWriteSettingsError) as caught:
        with_environment(RemoteWriteConfig(), {"SAURON_REMOTE_WRITE_URL": "vm:8428"})
    assert "SAURON_REMOTE_WRITE_URL" in str(caught.value) and "url" in str(caught.value)

    config = tmp_path / "agent.yaml"
    for section, says in (
        (
            "  url: http://vm:8428/api/v1/write\n  token: a\n  username: u\n  password_file: /p\n",
            "not both",
        ),
        ("  url: http://vm:8428/api/v1/write\n  username: u\n", "password_file"),
        ("  url: http://vm:8428/api/v1/write\n  headers: {Authorization: x}\n", "Authorization"),
        ("  url: http://vm:8428/api/v1/write\n  batch_size: 0\n", "batch_size"),
    ):
        config.write_text("node: n\ninterfaces: [{name: n3, role: n3}]\nremote_write:\n" + section)
        with pytest.raises(ConfigError) as bad:
            load_config(config)
        assert "remote_write" in str(bad.value) and says in str(bad.value), str(bad.value)
        assert "line" in str(bad.value)


def test_relative_paths_are_the_files(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(
        "node: n\ninterfaces: [{name: n3, role: n3}]\nremote_write:\n"
        "  url: http://vm:8428/api/v1/write\n  spool_dir: spool-rw\n  token_file: rw.token\n"
    )
    rw = load_config(config).remote_write
    assert (rw.spool_dir, rw.token_file) == (tmp_path / "spool-rw", tmp_path / "rw.token")


# -- against a receiver that answers what we script -----------------------


class StandIn:
    """A remote-write receiver on loopback, answering a script of statuses
    (then 204): what victoria-metrics will not answer on purpose. It keeps
    every request: when, status given, headers and the samples protoc read."""

    def __init__(
        self, tmp: Path, script: list[tuple[int, dict[str, str]]], max_samples: int | None = None
    ):
        self.tmp, self.script, self.max_samples = tmp, list(script), max_samples
        self.requests: list[tuple[float, int, dict[str, str], list[Any]]] = []
        self.accepted: list[tuple[tuple[tuple[str, str], ...], int, float]] = []

    async def write(self, request: web.Request) -> web.Response:
        body = bytes(cramjam.snappy.decompress_raw(await request.read()))
        series = protoc_decode(body, self.tmp)
        n = sum(len(points) for _, points in series)
        if self.max_samples is not None and n > self.max_samples:
            status, headers = 413, {}
        elif self.script:
            status, headers = self.script.pop(0)
        else:
            status, headers = 204, {}
        self.requests.append((time.monotonic(), status, dict(request.headers), series))
        if status == 204:
            self.accepted += [(labels, ms, v) for labels, points in series for ms, v in points]
            return web.Response(status=204)
        return web.Response(status=status, text=f"scripted {status} {TOKEN}", headers=headers)


def run_against(
    server: StandIn,
    tmp: Path,
    body: Callable[[RemoteWriteExporter], Awaitable[None]],
    **overrides: Any,
) -> RemoteWriteExporter:
    async def go() -> RemoteWriteExporter:
        app = web.Application()
        app.router.add_post("/api/v1/write", server.write)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        cfg = RemoteWriteConfig.model_validate(
            {
                "url": f"http://127.0.0.1:{port}/api/v1/write",
                "spool_dir": tmp / "spool",
                "flush_interval_s": 0.05,
                "retry_first_s": 0.05,
                "retry_max_s": 0.2,
                "token": TOKEN,
                **overrides,
            }
        )
        exporter = RemoteWriteExporter(cfg, "node-a", TOKEN)
        await exporter.start()
        try:
            await body(exporter)
        finally:
            await exporter.stop()
            await runner.cleanup()
        return exporter

    return asyncio.run(go())


def on_node(labels: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """A series' labels as sent: with the node's `instance` and the `job`."""
    return tuple(sorted({"instance": "node-a", "job": "sauron", **dict(labels)}.items()))


def interval(n: int, series: int = 3) -> list[str]:
    """One interval's lines: `series` counters at second n."""
    return [
        f'sauron_x_total{{slice="s{i}"}} {n * 10 + i} {1_700_000_000_000 + n * 1000}'
        for i in range(series)
    ]


async def until_written(exporter: RemoteWriteExporter, n: int, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while exporter.stats.points_written < n and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


def test_the_request_carries_the_protocol_headers_and_the_credentials(tmp_path: Path) -> None:
    server = StandIn(tmp_path, [])

    async def body(e: RemoteWriteExporter) -> None:
        e.offer(interval(0))
        await until_written(e, 3)

    run_against(
        server,
        tmp_path,
        body,
        headers={"X-Scope-OrgID": "tenant-a"},
        external_labels={"job": "upf", "cluster": "c1", "slice": "not-the-series-own"},
    )
    ((_, _, headers, series),) = server.requests
    assert headers["Content-Encoding"] == "snappy"
    assert headers["Content-Type"] == "application/x-protobuf"
    assert headers["X-Prometheus-Remote-Write-Version"] == "0.1.0"
    assert headers["X-Scope-OrgID"] == "tenant-a"
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert len(series) == 3
    # the node's instance, the job as external_labels say, a series' own label wins
    assert [dict(labels) for labels, _ in series] == [
        {
            "__name__": "sauron_x_total",
            "cluster": "c1",
            "instance": "node-a",
            "job": "upf",
            "slice": f"s{i}",
        }
        for i in range(3)
    ]


def test_retry_after_is_honoured_and_nothing_is_lost(tmp_path: Path) -> None:
    """429 then 503, each asking for a second: no attempt comes sooner, and
    every interval arrives once, in order, with its own time."""
    server = StandIn(tmp_path, [(429, {"Retry-After": "1"}), (503, {"Retry-After": "1"})])

    async def body(e: RemoteWriteExporter) -> None:
        for n in range(6):
            e.offer(interval(n))
            await asyncio.sleep(0.1)
        await until_written(e, 18)

    exporter = run_against(server, tmp_path, body)
    times = [t for t, _, _, _ in server.requests]
    assert [s for _, s, _, _ in server.requests][:2] == [429, 503]
    assert times[1] - times[0] >= 0.95 and times[2] - times[1] >= 0.95
    assert exporter.stats.state == "stopped" and not exporter.stats.points_dropped
    expected = [parse(line) for n in range(6) for line in interval(n)]
    assert sorted(server.accepted) == sorted(
        (on_node(s.labels), s.time_ms, s.value) for s in expected
    )
    assert exporter.stats.points_replayed > 0 and exporter.spool.points == 0


def test_refused_credentials_are_one_error_and_the_samples_wait(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = StandIn(tmp_path, [(401, {})] * 50)
    states: list[str] = []

    async def body(e: RemoteWriteExporter) -> None:
        for n in range(8):
            e.offer(interval(n))
            await asyncio.sleep(0.05)
            states.append(e.stats.state)
        assert not e.health().ok and "refuses" in e.health().problem

    with caplog.at_level(logging.INFO, logger="sauron"):
        exporter = run_against(server, tmp_path, body, rejected_retry_s=60)
    assert REJECTED in states and len(server.requests) == 1  # no retry storm
    refusals = [r for r in caplog.records if "refused the writes" in r.getMessage()]
    assert len(refusals) == 1
    assert TOKEN not in caplog.text and TOKEN not in exporter.stats.last_error
    assert exporter.spool.points == 24  # every sample waits on disk
    exporter.spool.close()


def test_refused_content_drops_the_batch_counted_and_413_splits(tmp_path: Path) -> None:
    server = StandIn(tmp_path, [(400, {})], max_samples=2)

    async def body(e: RemoteWriteExporter) -> None:
        e.offer(interval(0, series=1))
        await asyncio.sleep(0.2)
        e.offer(interval(1, series=4))
        await until_written(e, 4)

    exporter = run_against(server, tmp_path, body)
    assert exporter.stats.points_dropped == {"refused_400": 1}
    assert exporter.stats.state in ("stopped",) and len(server.accepted) == 4
    assert [s for _, s, _, _ in server.requests][-3:] == [413, 204, 204]
    assert exporter.summary()["points_dropped"] == 1


#: an exporter that queues what it is offered and is killed before it flushes
KILLED_BEFORE_FLUSH = """
import asyncio, os, signal, sys
from pathlib import Path
from sauron.export.remote_write.exporter import RemoteWriteExporter
from sauron.export.remote_write.settings import RemoteWriteConfig

async def main():
    cfg = RemoteWriteConfig(url="http://127.0.0.1:9/api/v1/write", spool_dir=Path(sys.argv[1]), flush_interval_s=300)
    exporter = RemoteWriteExporter(cfg, 'node-a')
    await exporter.start()
    for n in range(4):
        exporter.offer([f'sauron_x_total{{slice="s{i}"}} {n * 10 + i} {1_700_000_000_000 + n * 1000}' for i in range(3)])
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


def test_samples_queued_when_the_agent_is_killed_are_written_by_the_next(tmp_path: Path) -> None:
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_BEFORE_FLUSH, str(tmp_path / "spool")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    server = StandIn(tmp_path, [])

    async def body(e: RemoteWriteExporter) -> None:
        await until_written(e, 12)

    exporter = run_against(server, tmp_path, body)
    expected = [parse(line) for n in range(4) for line in interval(n)]
    assert sorted(server.accepted) == sorted(
        (on_node(s.labels), s.time_ms, s.value) for s in expected
    )
    assert exporter.stats.points_replayed == 12 and exporter.stats.state == "stopped"
    again = run_against(StandIn(tmp_path, []), tmp_path, lambda e: asyncio.sleep(0.3))
    assert again.stats.points_written == 0


def test_an_unreachable_receiver_is_spooling_and_named_in_the_log(tmp_path: Path) -> None:
    async def body(e: RemoteWriteExporter) -> None:
        e.offer(interval(0))
        deadline = time.monotonic() + 5
        while e.stats.state != "spooling" and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert e.stats.state == "spooling" and e.health().ok
        assert e.summary()["url"] == "http://u:***@127.0.0.1:9/api/v1/write"

    async def go() -> None:
        cfg = RemoteWriteConfig(
            url="http://u:secretpw@127.0.0.1:9/api/v1/write",
            spool_dir=tmp_path / "spool",
            flush_interval_s=0.05,
        )
        e = RemoteWriteExporter(cfg, "node-a")
        await e.start()
        try:
            await body(e)
        finally:
            await e.stop()
        assert "secretpw" not in e.stats.last_error and e.spool.points == 3

    asyncio.run(go())


def test_spool_and_journal_keep_a_line_whose_value_holds_other_line_breaks(
    tmp_path: Path,
) -> None:
    """The exposition escapes only "\\n": a slice's label may hold "\\r",
    "\\u2028" or "\\x85", and a replay must give the same lines back."""
    breaks = ("\r", "\u2028", "\x85", "\x1c")
    lines = [f'sauron_x{{slice="a{c}b"}} 1 1700000000000' for c in breaks]
    spool = Spool(tmp_path / "spool", 1 << 20)
    spool.append(lines)
    batch = spool.oldest()
    assert batch is not None and batch.lines == lines and spool.points == len(lines)
    spool.close()
    journal = Journal(tmp_path / "spool")
    journal.append(lines)
    assert journal.recover() == lines


def test_the_publishers_spool_is_refused_as_the_remote_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both exporters on one directory would share a journal: refused at
    start, naming the field; their default directories differ."""
    from sauron.agent.run import open_publisher, open_remote_write

    for name in ("SAURON_REMOTE_WRITE_URL", "SAURON_INFLUX_URL"):
        monkeypatch.delenv(name, raising=False)
    where = tmp_path / "agent.yaml"
    publisher = open_publisher(
        InfluxConfig(url="http://127.0.0.1:9", spool_dir=tmp_path / "spool"), "n", where
    )
    assert publisher is not None
    try:
        assert open_remote_write(RemoteWriteConfig(), "n", where, publisher) is None  # no url
        same = RemoteWriteConfig(
            url="http://127.0.0.1:9/api/v1/write", spool_dir=tmp_path / "spool"
        )
        with pytest.raises(ConfigError) as caught:
            open_remote_write(same, "n", where, publisher)
        assert "remote_write.spool_dir" in str(caught.value)
        own = same.model_copy(update={"spool_dir": tmp_path / "spool" / "remote-write"})
        exporter = open_remote_write(own, "n", where, publisher)
        assert exporter is not None and exporter.name == "remote_write"
        exporter.spool.close()
    finally:
        publisher.spool.close()
    assert InfluxConfig().spool_dir != RemoteWriteConfig().spool_dir
