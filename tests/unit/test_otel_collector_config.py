"""deploy/otel-collector/config.yaml, read as the Collector reads its
configuration: what the metrics pipeline names exists (receivers,
processors, exporters), OTLP/HTTP is received where the agent's
documentation points it, and the remote write keeps the agent's names. No
Collector binary runs here (none is installable): this checks the file's
wiring, not the Collector's acceptance of every option."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sauron.export.otlp.settings import METRICS_PATH

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "otel-collector" / "config.yaml"
SECTIONS = ("receivers", "processors", "exporters")


def load() -> dict[str, Any]:
    doc = yaml.safe_load(CONFIG.read_text())
    assert isinstance(doc, dict)
    return doc


def broken_references(doc: dict[str, Any]) -> list[str]:
    """Every component a pipeline names that its section does not define."""
    missing = []
    for name, pipeline in doc["service"]["pipelines"].items():
        for section in SECTIONS:
            for component in pipeline.get(section, []):
                if component not in (doc.get(section) or {}):
                    missing.append(f"{name}.{section}: {component}")
    return missing


def test_the_metrics_pipeline_is_wired() -> None:
    doc = load()
    assert broken_references(doc) == []
    metrics = doc["service"]["pipelines"]["metrics"]
    assert metrics["receivers"] == ["otlp"]
    assert metrics["processors"] == ["batch"]
    assert metrics["exporters"] == ["prometheusremotewrite"]


def test_a_pipeline_naming_an_undefined_component_is_caught() -> None:
    doc = load()
    doc["service"]["pipelines"]["metrics"]["processors"] = ["batch", "memory_limiter"]
    assert broken_references(doc) == ["metrics.processors: memory_limiter"]


def test_otlp_http_on_the_port_the_docs_give_and_names_kept() -> None:
    doc = load()
    http = doc["receivers"]["otlp"]["protocols"]["http"]
    assert http["endpoint"].endswith(":4318")
    text = CONFIG.read_text()
    assert "OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector:4318" in text
    assert METRICS_PATH == "v1/metrics"  # where the receiver takes OTLP/HTTP metrics
    remote = doc["exporters"]["prometheusremotewrite"]
    assert remote["endpoint"].endswith("/api/v1/write")
    assert remote["translation_strategy"] == "UnderscoreEscapingWithSuffixes"
