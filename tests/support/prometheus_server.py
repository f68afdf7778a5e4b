"""Debian's `prometheus` as a real process on loopback, scraping one agent
every second, and its query API as an operator's dashboards read it."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from timeseries import free_port


class PrometheusServer:
    """`prometheus` scraping `target` every second with the bearer token."""

    def __init__(self, workdir: Path, target: str, token: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "token").write_text(token)
        (workdir / "prometheus.yml").write_text(
            json.dumps(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "scrape_configs": [
                        {
                            "job_name": "sauron",
                            "static_configs": [{"targets": [target]}],
                            "authorization": {"credentials_file": str(workdir / "token")},
                        }
                    ],
                }
            )
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (workdir / "prometheus.log").open("w")
        self.proc = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        with urllib.request.urlopen(url, timeout=5) as r:
            doc = json.load(r)
        assert doc["status"] == "success", doc
        return list(doc["data"]["result"])

    def value_when(self, expr: str, wanted: float, timeout_s: float = 30) -> float:
        """The query's one value, once it is `wanted` (a scrape after the
        last tick); fails with what Prometheus had."""
        deadline = time.monotonic() + timeout_s
        got: Any = None
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "prometheus exited"
            try:
                got = self.query(expr)
            except OSError:  # not listening yet
                got = None
            if got and float(got[0]["value"][1]) == wanted:
                return wanted
            time.sleep(0.3)
        raise AssertionError(f"{expr}: {got!r}, not {wanted}")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self.log.close()
