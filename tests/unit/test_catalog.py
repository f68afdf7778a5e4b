"""The slice catalog: the default loads, bad ones are refused with the file,
slice and field named, overlapping rules are reported."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sauron.bpf.rules import teid_range_prefixes
from sauron.catalog import (
    CatalogError,
    catalog_json_schema,
    default_catalog_path,
    load_catalog,
    parse_catalog,
)
from sauron.host.yamlfile import MAX_YAML_BYTES


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
            "transit_sample_one_in: must be a power of two",
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


# --- inputs bounded and decoded with care ---------------------------------------


def test_a_key_given_twice_is_refused_naming_both_lines(tmp_path: Path) -> None:
    body = (
        "slices:\n  - name: a\n    snssai: {sst: 1}\nslices:\n  - name: b\n    snssai: {sst: 2}\n"
    )
    with pytest.raises(CatalogError) as err:
        load_catalog(write(tmp_path, body))
    assert "key 'slices' given twice (lines 1 and 4)" in str(err.value)
    assert str(tmp_path / "catalog.yaml") in str(err.value)
    nested = "slices:\n  - name: a\n    snssai: {sst: 1, sst: 2}\n"
    with pytest.raises(CatalogError, match="key 'sst' given twice"):
        load_catalog(write(tmp_path, nested))


def test_bytes_that_are_not_utf8_are_named(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_bytes(b"slices:\n  - name: caf\xe9\n    snssai: {sst: 1}\n")
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    assert f"{path}: not UTF-8 text: byte 21 (line 2)" in str(err.value)


def test_a_huge_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    with path.open("w") as f:
        f.write("slices:\n")
        line = "  - {name: s, snssai: {sst: 1}}\n"
        f.write(line * (MAX_YAML_BYTES // len(line) + 1))
    with pytest.raises(CatalogError, match="larger than 8 MiB"):
        load_catalog(path)


def test_255_slices_of_a_thousand_teids_each_are_checked(tmp_path: Path) -> None:
    """The overlap check is a sweep: 255 000 TEIDs and one conflict, found
    (the former pairwise check took minutes here)."""
    slices = [
        {
            "name": f"s{n}",
            "snssai": {"sst": 1, "sd": n},
            "teids": list(range(n * 1000 + 1, n * 1000 + 1001)),
        }
        for n in range(255)
    ]
    slices[200]["teids"].append(5)  # also slice s0's
    with pytest.raises(CatalogError) as err:
        parse_catalog({"slices": slices}, "big")
    assert err.value.problems == ["slices 's0' and 's200' both claim TEIDs 0x5-0x5"]


@st.composite
def small_catalogs(draw: st.DrawFn) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for n in range(draw(st.integers(2, 4))):
        ranges = []
        for _ in range(draw(st.integers(0, 2))):
            first = draw(st.integers(1, 40))
            ranges.append({"first": first, "last": first + draw(st.integers(0, 10))})
        out.append(
            {
                "name": f"s{n}",
                "snssai": {"sst": n + 1},
                "teids": draw(st.lists(st.integers(1, 50), max_size=3, unique=True)),
                "teid_ranges": ranges,
                "ue_subnets": draw(st.lists(st.sampled_from(SUBNETS), max_size=2, unique=True)),
            }
        )
    return out


SUBNETS = ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.2.0.0/16", "fd00::/8", "fd00:1::/32"]


@settings(max_examples=300, deadline=None)
@given(raw=small_catalogs())
def test_the_sweep_finds_what_every_pair_compared_finds(raw: list[dict[str, object]]) -> None:
    """Refused exactly when two slices share a TEID, a UE subnet is claimed
    twice; a nested subnet warns; every error reported is true."""
    claims = [
        {t for t in s["teids"]}
        | {t for r in s["teid_ranges"] for t in range(r["first"], r["last"] + 1)}  # type: ignore[attr-defined, index]
        for s in raw
    ]
    nets = [{ipaddress.ip_network(n) for n in s["ue_subnets"]} for s in raw]  # type: ignore[attr-defined]
    pairs = [(a, b) for a in range(len(raw)) for b in range(a + 1, len(raw))]
    teid_clash = any(claims[a] & claims[b] for a, b in pairs)
    subnet_clash = any(nets[a] & nets[b] for a, b in pairs)
    nested = {
        (a, b, str(x), str(y))
        for a, b in pairs
        for x in nets[a]
        for y in nets[b]
        if x != y and x.version == y.version and x.overlaps(y)
    }
    try:
        catalog = parse_catalog({"slices": raw}, "drawn")
    except CatalogError as err:
        assert teid_clash or subnet_clash
        named = set()
        for problem in err.problems:
            if "both claim TEIDs" in problem:
                names, span = problem.split(" both claim TEIDs ")
                a, b = (int(x.strip("'s")) for x in names.removeprefix("slices ").split(" and "))
                lo, hi = (int(x, 16) for x in span.split("-"))
                assert set(range(lo, hi + 1)) <= claims[a] & claims[b], problem
                named.add((a, b))
        # and every clashing pair is named, once
        assert named == {(a, b) for a, b in pairs if claims[a] & claims[b]}, err.problems
        return
    assert not teid_clash and not subnet_clash
    assert len(catalog.warnings) == len(nested)
