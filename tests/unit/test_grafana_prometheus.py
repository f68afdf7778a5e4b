"""deploy/grafana/prometheus: the Grafana dashboard on a Prometheus data
source is its generator's output; Prometheus's own parser (promtool)
accepts every query once Grafana's variables are filled in; every metric
a query names is one the agent exposes; percentiles sum buckets by `le`
across agents before histogram_quantile. No root (promtool is Debian's)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml
from fake_data_plane import FakeDataPlane
from script_modules import load_script

from sauron.abi.kpis import LATENCY_KPIS
from sauron.agent.runtime import AgentRuntime
from sauron.catalog import load_catalog

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARD = GRAFANA / "prometheus" / "sauron-slices.json"
#: Grafana's variables, as a query sees them once filled in
FILLED = {
    "${slice:regex}": ".*",
    "$__rate_interval": "1m",
    "$instance": ".*",
    "$slice": "embb",
}
NAME = re.compile(r"\b((?:sauron|process)_[a-z_]+)\s*[{\[]")


def exprs() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]


def filled(expr: str) -> str:
    for var, value in FILLED.items():
        expr = expr.replace(var, value)
    return expr


def exposed_families() -> set[str]:
    """Every family the agent's exposition declares (the security checks
    on), the energy ones (only there when the estimator runs) from the
    module that writes them."""
    catalog = load_catalog()
    fake = FakeDataPlane(catalog)
    fake.security_on = True  # the security families are there while the checks run
    runtime = AgentRuntime(catalog, fake)
    runtime.prometheus.detections = dict  # no detection yet: the family, every series at 0
    runtime.engine.tick()
    text = "".join(runtime.exposition())
    families = set(re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE))
    source = (REPO / "sauron" / "export" / "families.py").read_text()
    families |= set(re.findall(r'"(sauron_energy_[a-z_]+)"', source))
    return families


def unknown_names(queries: list[str], families: set[str]) -> list[str]:
    bad = []
    for q in queries:
        for name in NAME.findall(q):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            if name not in families and base not in families:
                bad.append(name)
    return bad


def test_dashboard_file_is_the_generator_output_and_its_data_source_is_provisioned() -> None:
    module = load_script(GRAFANA / "make_prometheus_dashboard.py")
    assert DASHBOARD.read_text() == module.render()
    source: dict[str, Any] = yaml.safe_load(
        (GRAFANA / "prometheus" / "datasource.yaml").read_text()
    )
    (ds,) = source["datasources"]
    assert ds["type"] == "prometheus"
    uids = {
        t["datasource"]["uid"]
        for p in json.loads(DASHBOARD.read_text())["panels"]
        for t in p.get("targets", [])
    }
    assert uids == {ds["uid"]}


def test_promtool_parses_every_query(tmp_path: Path) -> None:
    queries = exprs()
    assert len(queries) >= 10
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": filled(q)}
                    for i, q in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump(rules))
    done = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_metric_a_query_names_is_exposed_and_a_misspelt_one_is_caught() -> None:
    families = exposed_families()
    assert not unknown_names(exprs(), families)
    assert unknown_names(['rate(sauron_packet_total{slice="embb"}[1m])'], families) == [
        "sauron_packet_total"
    ]
    # every latency KPI has its percentiles on the dashboard
    for kpi in LATENCY_KPIS:
        assert any(f"{kpi.prometheus}_bucket" in q for q in exprs()), kpi.name


def test_percentiles_come_from_buckets_summed_by_le() -> None:
    quantile_queries = [q for q in exprs() if "histogram_quantile" in q]
    assert len(quantile_queries) >= 4
    for q in quantile_queries:
        assert re.search(r"sum by \(le\b", q) and "rate(" in q and "avg" not in q, q
