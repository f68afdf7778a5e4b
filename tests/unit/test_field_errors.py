"""Errors in the operator's YAML files, as a person reads them: the file,
the line, the field as the file spells it, what is wrong in words (no
validator internals), and for a mistyped key the one meant."""

from __future__ import annotations

from pathlib import Path

import pytest

from sauron.agent.config import ConfigError, load_config
from sauron.catalog import CatalogError, load_catalog

CATALOG = """\
slices:
  - name: embb
    snssai: {sst: 1}
    ue_subnets: ["10.45.0.0/33"]
    teid_rnages: []
  - name: urllc
    snssai: {sst: 2, sd: "zz"}
    colour: blue
"""


def problems_of(error: pytest.ExceptionInfo[Exception], path: Path) -> list[str]:
    text = str(error.value)
    assert all(line.startswith(f"{path}: ") for line in text.splitlines())
    return [line.removeprefix(f"{path}: ") for line in text.splitlines()]


def test_a_catalog_error_names_line_slice_field_and_the_key_meant(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG)
    with pytest.raises(CatalogError) as error:
        load_catalog(path)
    *named, unknown = problems_of(error, path)
    assert named == [
        "line 4: slice 'embb' (slices[0]), field ue_subnets.0: "
        "'10.45.0.0/33' is not a valid IPv4 network or IPv6 network",
        "line 5: slice 'embb' (slices[0]), field teid_rnages: "
        "unknown key 'teid_rnages': did you mean 'teid_ranges'?",
        "line 7: slice 'urllc' (slices[1]), field snssai.sd: "
        "SD must be a 6-digit hex string or an integer",
    ]
    # nothing near enough: the keys that may be there
    assert unknown.startswith("line 8: slice 'urllc' (slices[1]), field colour: unknown key")
    keys = unknown.split("(keys here: ")[1].rstrip(")").split(", ")
    assert {"name", "snssai", "teids", "teid_ranges", "ue_subnets"} <= set(keys)
    assert "lax-or-strict" not in str(error.value) and "validator" not in str(error.value)


def test_an_agent_configuration_error_names_line_field_and_the_key_meant(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(
        "node: x\n"
        "interfaces:\n"
        "  - {name: eth0, role: n3, ingres: tc}\n"
        "service: {prot: 80}\n"
        "interval_s: abc\n"
    )
    with pytest.raises(ConfigError) as error:
        load_config(path, environ={})
    assert problems_of(error, path) == [
        "line 3: field interfaces.0.ingres: unknown key 'ingres': did you mean 'ingress'?",
        "line 4: field service.prot: unknown key 'prot': did you mean 'port'?",
        "line 5: field interval_s: 'abc' should be a valid number, "
        "unable to parse string as a number",
    ]


def test_a_missing_field_says_so_at_its_mapping(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text("slices:\n  - snssai: {sst: 1}\n")
    with pytest.raises(CatalogError) as error:
        load_catalog(path)
    assert problems_of(error, path) == ["line 2: slices[0], field name: missing (it is required)"]
