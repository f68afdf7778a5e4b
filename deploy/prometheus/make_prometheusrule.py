"""Writes prometheusrule.yaml, the rules of sauron-rules.yaml as a
Prometheus Operator PrometheusRule (its spec.groups are the same groups):
one file owns the rules, this one wraps them. Run: python
deploy/prometheus/make_prometheusrule.py (tests/unit/test_rules.py checks
the file is this script's output)."""

from __future__ import annotations

from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
RULES = HERE / "sauron-rules.yaml"
OUT = HERE / "prometheusrule.yaml"
HEADER = (
    "# Written by make_prometheusrule.py from sauron-rules.yaml: edit that\n"
    "# file, then run the script. For the Prometheus Operator, beside\n"
    "# servicemonitor.yaml.\n"
)


class _Literal(yaml.SafeDumper):
    """Multi-line expressions as block literals, as they read in the rules."""


def _text(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Literal.add_representer(str, _text)


def render() -> str:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "sauron-agent",
            "namespace": "sauron",
            "labels": {
                "app.kubernetes.io/name": "sauron-agent",
                "app.kubernetes.io/part-of": "sauron",
            },
        },
        "spec": {"groups": groups},
    }
    return HEADER + yaml.dump(rule, Dumper=_Literal, sort_keys=False, width=200)


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
