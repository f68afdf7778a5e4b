"""deploy/prometheus/sauron-rules.yaml: Prometheus's own tool accepts the
rules and runs them against series shaped like an agent's /metrics (the
SLA alert fires while a violation is open and resolves when it closes;
spooling alerts after five minutes; the delivered throughput counts only
the bytes that leave the UPF). No root (promtool is Debian's, installed by
`make setup`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml
from script_modules import load_script

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
K8S = RULES.parent / "k8s"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], cwd=RULES, capture_output=True, text=True)


def test_promtool_accepts_the_rules() -> None:
    done = promtool("check", "rules", "sauron-rules.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 13 rules found" in done.stdout


def test_the_rules_do_what_they_say_on_series_like_an_agents() -> None:
    done = promtool("test", "rules", "sauron-rules.test.yaml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_broken_rule_is_caught(tmp_path: Path) -> None:
    """The test file would notice a rule that watched the wrong state."""
    (tmp_path / "sauron-rules.yaml").write_text(
        (RULES / "sauron-rules.yaml").read_text().replace('state="violated"', 'state="at risk"')
    )
    (tmp_path / "sauron-rules.test.yaml").write_text((RULES / "sauron-rules.test.yaml").read_text())
    done = subprocess.run(
        ["promtool", "test", "rules", "sauron-rules.test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "SauronSliceSlaViolated" in done.stdout + done.stderr


def test_the_service_monitor_scrapes_the_agents_service_with_its_token() -> None:
    """The ServiceMonitor (a CRD the Kubernetes schemas do not hold) must
    meet the DaemonSet's own manifests: it selects the agents' Service,
    names a port that Service has, and reads the token from the Secret
    and key the agents mount."""
    monitor = yaml.safe_load((RULES / "servicemonitor.yaml").read_text())
    manifests = list(yaml.safe_load_all((K8S / "daemonset.yaml").read_text()))
    (service,) = [m for m in manifests if m["kind"] == "Service"]
    (daemonset,) = [m for m in manifests if m["kind"] == "DaemonSet"]
    assert monitor["kind"] == "ServiceMonitor"
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    selected = monitor["spec"]["selector"]["matchLabels"]
    assert selected.items() <= service["metadata"]["labels"].items()
    assert service["metadata"]["namespace"] in monitor["spec"]["namespaceSelector"]["matchNames"]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    secret = endpoint["authorization"]["credentials"]
    volumes = daemonset["spec"]["template"]["spec"]["volumes"]
    mounted = [
        (v["secret"]["secretName"], item["key"])
        for v in volumes
        if "secret" in v
        for item in v["secret"].get("items", [])
    ]
    assert (secret["name"], secret["key"]) in mounted


def test_the_prometheus_rule_is_its_generators_output_and_holds_the_same_groups() -> None:
    module = load_script(RULES / "make_prometheusrule.py")
    assert (RULES / "prometheusrule.yaml").read_text() == module.render()
    wrapped = yaml.safe_load((RULES / "prometheusrule.yaml").read_text())
    rules = yaml.safe_load((RULES / "sauron-rules.yaml").read_text())
    assert wrapped["kind"] == "PrometheusRule"
    assert wrapped["spec"]["groups"] == rules["groups"]
