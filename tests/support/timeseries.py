"""The time-series server the publisher and remote-write tests write to:
Debian's victoria-metrics on loopback (it takes the InfluxDB v2 write API
and Prometheus remote write), started, stopped and restarted on the same
port and data by the tests; or, with
SAURON_TEST_INFLUXDB_URL (and _TOKEN, _ORG, _BUCKET), a real InfluxDB 2
that the tests only read back from (they cannot stop it).

Points read back are (measurement, tags, field, time ns, value) samples:
victoria-metrics names a field `<measurement>_<field>` and keeps every
sample written, duplicates included, which is what lets a test count
arrivals; a string field is kept as a sample without its text (value 0)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sauron.export.influx.points import MEASUREMENTS

VICTORIA_METRICS = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"


@dataclass(frozen=True)
class Sample:
    measurement: str
    tags: tuple[tuple[str, str], ...]
    field: str
    time_ms: int
    value: float


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class VictoriaMetrics:
    external = False
    org, bucket, token = "sauron-test", "sauron-test", "victoria-metrics-ignores-it"

    def __init__(self, data: Path, port: int | None = None) -> None:
        self.data, self.port = data, port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.data.parent / f"{self.data.name}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                VICTORIA_METRICS,
                f"-httpListenAddr=127.0.0.1:{self.port}",
                f"-storageDataPath={self.data}",
                "-retentionPeriod=100y",
                "-search.disableCache",
                "-search.latencyOffset=0s",
                "-loggerLevel=ERROR",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"victoria-metrics did not come up on {self.url}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.proc = None

    def series(self, match: str) -> dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]:
        """Every series `match` selects, by its labels (`__name__` among them,
        sorted), with its raw samples (time ms, value) as stored, duplicates
        included, oldest first."""
        urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10).close()
        query = urllib.parse.urlencode({"match[]": match})
        out: dict[tuple[tuple[str, str], ...], list[tuple[int, float]]] = {}
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=30) as r:
            for text in r.read().decode().splitlines():
                series = json.loads(text)
                labels = tuple(sorted(series["metric"].items()))
                points = zip(series["timestamps"], series["values"], strict=True)
                out.setdefault(labels, []).extend((int(t), float(v)) for t, v in points)
        return {labels: sorted(points) for labels, points in out.items()}

    def samples(self) -> list[Sample]:
        urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10).close()
        names = "|".join(MEASUREMENTS)
        query = urllib.parse.urlencode({"match[]": f'{{__name__=~"({names})_.*"}}'})
        out: list[Sample] = []
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=30) as r:
            for text in r.read().decode().splitlines():
                series = json.loads(text)
                labels = dict(series["metric"])
                name = labels.pop("__name__")
                labels.pop("db", None)
                # the longest: sauron_security_event_count is not sauron_security's
                measurement = max((m for m in MEASUREMENTS if name.startswith(m + "_")), key=len)
                field = name[len(measurement) + 1 :]
                tags = tuple(sorted(labels.items()))
                for ts, value in zip(series["timestamps"], series["values"], strict=True):
                    out.append(Sample(measurement, tags, field, int(ts), float(value)))
        return out


class ExternalInflux:
    """A real InfluxDB 2 given by the environment; read back with Flux."""

    external = True

    def __init__(self) -> None:
        self.url = os.environ["SAURON_TEST_INFLUXDB_URL"]
        self.token = os.environ.get("SAURON_TEST_INFLUXDB_TOKEN", "")
        self.org = os.environ.get("SAURON_TEST_INFLUXDB_ORG", "sauron")
        self.bucket = os.environ.get("SAURON_TEST_INFLUXDB_BUCKET", "sauron-test")

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def samples(self) -> list[Sample]:
        names = "|".join(MEASUREMENTS)
        flux = (
            f'from(bucket: "{self.bucket}") |> range(start: 0) '
            f"|> filter(fn: (r) => r._measurement =~ /^({names})$/)"
        )
        request = urllib.request.Request(
            f"{self.url}/api/v2/query?org={urllib.parse.quote(self.org)}",
            data=json.dumps({"query": flux, "dialect": {"annotations": []}}).encode(),
            headers={
                "Authorization": f"Token {self.token}",
                "Content-Type": "application/json",
                "Accept": "application/csv",
            },
        )
        with urllib.request.urlopen(request, timeout=60) as r:
            return flux_csv_samples(r.read().decode())


def flux_csv_samples(text: str) -> list[Sample]:
    """Samples from the CSV InfluxDB's /api/v2/query answers: tables separated
    by blank lines, each with its own header row; annotation rows (#...)
    skipped; string fields left out (only numbers are compared)."""
    out: list[Sample] = []
    header: list[str] = []
    meta = {"", "result", "table", "_start", "_stop", "_time", "_value", "_field", "_measurement"}
    for cells in csv.reader(io.StringIO(text)):
        if not cells or not any(cells):
            header = []
            continue
        if cells[0].startswith("#"):
            continue
        if not header:
            header = cells
            continue
        rec = dict(zip(header, cells, strict=False))
        try:
            value = float(rec["_value"])
        except ValueError:
            continue
        tags = tuple(sorted((k, v) for k, v in rec.items() if k not in meta))
        ms = round(datetime.fromisoformat(rec["_time"]).timestamp() * 1000)
        out.append(Sample(rec["_measurement"], tags, rec["_field"], ms, value))
    return out


def parse_line(text: str) -> list[Sample]:
    """Our own line protocol back into samples (a string field's value as
    NaN: only its presence can be compared), for
    comparing what was written with what the server holds. Enough of the
    protocol for what the publisher writes: escaped commas, spaces and
    equals signs in keys and tag values; no spaces inside strings."""

    def split(s: str, sep: str) -> list[str]:
        parts, cur, i = [], "", 0
        while i < len(s):
            if s[i] == "\\" and i + 1 < len(s):
                cur += s[i + 1]
                i += 2
                continue
            if s[i] == sep:
                parts.append(cur)
                cur = ""
            else:
                cur += s[i]
            i += 1
        parts.append(cur)
        return parts

    head, fields, stamp = _split_unescaped_spaces(text)
    measurement, *tag_parts = split(head, ",")
    tags = tuple(sorted(tuple(split(t, "=")) for t in tag_parts))  # type: ignore[misc]
    out = []
    for f in _field_parts(fields):
        key, value = f.split("=", 1)
        key = key.replace("\\", "")
        if value.startswith('"'):
            number = float("nan")
        elif value in ("true", "false"):
            number = 1.0 if value == "true" else 0.0
        else:
            number = float(value.rstrip("i"))
        out.append(Sample(measurement, tags, key, int(stamp) // 1_000_000, number))
    return out


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    """`text` split at each `separator` outside a string value (a
    backslash escapes the character after it)."""
    parts, cur, i, quoted = [], "", 0, False
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            cur += text[i : i + 2]
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        if c == separator and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    parts.append(cur)
    return parts


def _field_parts(fields: str) -> list[str]:
    """The fields of a line, split at the commas outside string values."""
    return _split_outside_quotes(fields, ",")


def string_fields(text: str) -> dict[str, str]:
    """The string fields of one line of our line protocol, unescaped: what
    a server that keeps no text (victoria-metrics) cannot be asked for."""
    _, fields, _ = _split_unescaped_spaces(text)
    out = {}
    for f in _field_parts(fields):
        key, value = f.split("=", 1)
        if value.startswith('"'):
            out[key.replace("\\", "")] = re.sub(r"\\(.)", r"\1", value[1:-1])
    return out


def _split_unescaped_spaces(text: str) -> tuple[str, str, str]:
    head, fields, stamp = _split_outside_quotes(text, " ")
    return head, fields, stamp


def server_for_tests(tmp: Path) -> VictoriaMetrics | ExternalInflux:
    if os.environ.get("SAURON_TEST_INFLUXDB_URL"):
        return ExternalInflux()
    return VictoriaMetrics(tmp / "vmdata")
