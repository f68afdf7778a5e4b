"""The slice catalog: the default loads, bad ones are refused with the file,
slice and field named, overlapping rules are reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sauron.catalog import CatalogError, catalog_json_schema, default_catalog_path, load_catalog
from sauron.rules import teid_range_prefixes


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    return path


def test_default_catalog_has_three_slices() -> None:
    catalog = load_catalog()
    assert [(s.name, s.spec.snssai.sst) for s in catalog.slices] == [
        ("embb", 1),
        ("urllc", 2),
        ("mmtc", 3),
    ]
    assert catalog.warnings == ()


def test_bad_sst_names_file_slice_and_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "slices:\n  - name: ok\n    snssai: {sst: 1}\n  - name: broken\n    snssai: {sst: 300}\n",
    )
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    text = str(err.value)
    assert str(path) in text and "slice 'broken' (slices[1])" in text and "snssai.sst" in text


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("slices:\n  - name: a\n    snssai: {sst: 1, sd: zz}\n", "snssai.sd"),
        ("slices:\n  - name: a\n    snssai: {sst: 1, sd: 0x1000000}\n", "24 bits"),
        (
            "slices:\n  - name: a\n    snssai: {sst: 1}\n    ue_subnets: [10.0.0.300/8]\n",
            "ue_subnets",
        ),
        ("slices:\n  - name: a\n    snssai: {sst: 1}\n    qfis: [64]\n", "qfis"),
        ("slices:\n  - name: a\n    snssai: {sst: 1}\n    colour: red\n", "colour"),
        (
            "slices:\n  - name: a\n    snssai: {sst: 1}\n    teid_ranges: [{first: 10, last: 5}]\n",
            "teid_ranges",
        ),
        ("slices: []\n", "slices"),
        (
            "slices:\n  - name: a\n    snssai: {sst: 1}\n  - name: a\n    snssai: {sst: 2}\n",
            "defined twice",
        ),
        (
            "slices:\n  - name: a\n    snssai: {sst: 1}\n  - name: b\n    snssai: {sst: 1}\n",
            "already used",
        ),
        ("slices:\n  - name: unclassified\n    snssai: {sst: 1}\n", "reserved"),
        ("slices: [\n", "not valid YAML"),
        (
            "slices:\n  - name: a\n    snssai: {sst: 1}\n    transit_sample_one_in: 10\n",
            "transit_sample_one_in: Value error, must be a power of two",
        ),
    ],
)
def test_bad_catalogs_are_refused(tmp_path: Path, body: str, fragment: str) -> None:
    with pytest.raises(CatalogError) as err:
        load_catalog(write(tmp_path, body))
    assert fragment in str(err.value)


def test_overlaps_are_reported(tmp_path: Path) -> None:
    body = (
        "slices:\n"
        "  - name: a\n    snssai: {sst: 1}\n    ue_subnets: [10.45.0.0/16]\n    teids: [100]\n    qfis: [5]\n"
        "  - name: b\n    snssai: {sst: 2}\n    ue_subnets: [10.45.0.0/16]\n"
        "    teid_ranges: [{first: 50, last: 150}]\n    qfis: [5]\n"
    )
    with pytest.raises(CatalogError) as err:
        load_catalog(write(tmp_path, body))
    problems = err.value.problems
    assert any("UE subnet 10.45.0.0/16" in p for p in problems)
    assert any("TEIDs 0x64-0x64" in p for p in problems)
    assert any("QFI 5" in p for p in problems)


def test_nested_subnets_warn(tmp_path: Path) -> None:
    body = (
        "slices:\n  - name: a\n    snssai: {sst: 1}\n    ue_subnets: [10.45.0.0/16]\n"
        "  - name: b\n    snssai: {sst: 2}\n    ue_subnets: [10.45.7.0/24]\n"
    )
    catalog = load_catalog(write(tmp_path, body))
    assert len(catalog.warnings) == 1 and "longer prefix wins" in catalog.warnings[0]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    ("first", "last"), [(1, 1), (0x10000, 0x1FFFF), (5, 1000), (1, 0xFFFFFFFF)]
)
def test_teid_ranges_become_exact_prefix_cover(first: int, last: int) -> None:
    blocks = teid_range_prefixes(first, last)
    covered = sum(1 << (32 - plen) for _, plen in blocks)
    assert covered == last - first + 1
    assert min(v for v, _ in blocks) == first


def test_the_published_schema_is_the_models_schema() -> None:
    published = json.loads((default_catalog_path().parent / "schema.json").read_text())
    assert published == catalog_json_schema()
