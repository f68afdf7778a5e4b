"""The OTLP exporter's settings as an operator gives them: the `otlp:`
section of the agent's file, and OpenTelemetry's variables winning over it
(the official exporter reads those itself, so the file's setting is handed
to it only where the environment says nothing). A value neither can use is
an error naming the file's field and line, or the variable. No root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sauron.agent.config import ConfigError, load_config
from sauron.agent.run import open_otlp
from sauron.export.otlp.settings import (
    OtlpConfig,
    OtlpSettingsError,
    enabled,
    endpoint_url,
    exporter_arguments,
)

FILE = OtlpConfig(
    endpoint="http://collector.monitoring:4318/",
    headers={"x-scope-orgid": "ran-tenant-7f3"},
    timeout_s=3,
    compression="gzip",
)


def test_the_files_settings_reach_the_exporter_when_the_environment_is_silent() -> None:
    assert enabled(FILE, {})
    assert exporter_arguments(FILE, {}) == {
        "endpoint": "http://collector.monitoring:4318/v1/metrics",
        "headers": {"x-scope-orgid": "ran-tenant-7f3"},
        "timeout": 3,
        "compression": "gzip",
    }
    assert endpoint_url(FILE, {}) == "http://collector.monitoring:4318/v1/metrics"


def test_each_variable_wins_over_its_setting() -> None:
    environ = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318",
        "OTEL_EXPORTER_OTLP_METRICS_HEADERS": "x-scope-orgid=core",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "7",
        "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": "none",
    }
    # the exporter reads them: an argument would win over the variable
    assert exporter_arguments(FILE, environ) == {}
    assert endpoint_url(FILE, environ) == "http://otel:4318/v1/metrics"
    metrics_only = {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://otel:4318/custom"}
    assert endpoint_url(FILE, metrics_only) == "http://otel:4318/custom"
    assert "endpoint" not in exporter_arguments(FILE, metrics_only)


def test_no_endpoint_anywhere_no_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not enabled(OtlpConfig(), {})
    assert enabled(OtlpConfig(), {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://otel:4318/x"})
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert open_otlp(OtlpConfig(), "upf-1") is None


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "ten", "timeout_s"),
        ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "brotli", "compression"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318", "endpoint"),
    ],
)
def test_a_variable_the_exporter_cannot_use_is_an_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str
) -> None:
    with pytest.raises(OtlpSettingsError) as err:
        exporter_arguments(FILE, {variable: value})
    assert variable in err.value.path
    assert any(field in p for p in err.value.problems), err.value.problems
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as agent_err:
        open_otlp(FILE, "upf-1")
    assert variable in str(agent_err.value)


def test_the_section_in_the_agents_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(
        "interfaces: [{name: eth0, role: n3}]\n"
        "otlp:\n"
        "  endpoint: http://collector:4318\n"
        "  resource_attributes: {deployment.environment: lab}\n"
    )
    config = load_config(path)
    assert config.otlp.endpoint == "http://collector:4318"
    assert config.otlp.resource_attributes == {"deployment.environment": "lab"}
    assert config.otlp.service_name == "sauron"
    path.write_text(
        "interfaces: [{name: eth0, role: n3}]\notlp:\n  endpoint: http://collector:4318\n"
        "  compression: zstd\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert "otlp.compression" in str(err.value)
    assert "line 4" in str(err.value)


def test_headers_are_not_shown() -> None:
    assert "ran-tenant-7f3" not in repr(FILE)
    assert "x-scope-orgid" in repr(FILE)


def test_run_refuses_a_bad_otel_variable_before_attaching(tmp_path: Path) -> None:
    """`sauron run` names the variable and exits with the configuration's
    status before it loads or attaches anything."""
    path = tmp_path / "agent.yaml"
    path.write_text("interfaces: [{name: lo, role: n3}]\n")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-m", "sauron", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        env={**environ, "OTEL_EXPORTER_OTLP_ENDPOINT": "collector-without-scheme:4318"},
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in done.stderr and "endpoint" in done.stderr
