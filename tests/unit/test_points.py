"""The attach points read from sauron_shared.h's SAURON_POINT_TABLE: the
shipped table says what the code used to infer from the order of the ids,
a bad table is refused, and a table with N9 rows needs no other change to
be read. No root, no kernel (tests/test_layout.py holds the reading against
clang's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sauron.abi import layout, points
from sauron.abi.source import shared_header

UL, DL = layout.DIR_UPLINK, layout.DIR_DOWNLINK


def test_the_shipped_points() -> None:
    by_name = {p.name: p for p in points.POINTS}
    assert list(by_name) == ["n3_ingress", "n3_egress", "n6_ingress", "n6_egress"]
    n3_in, n3_out = by_name["n3_ingress"], by_name["n3_egress"]
    n6_in, n6_out = by_name["n6_ingress"], by_name["n6_egress"]
    assert [p.id for p in (n3_in, n3_out, n6_in, n6_out)] == [
        layout.POINT_N3_INGRESS,
        layout.POINT_N3_EGRESS,
        layout.POINT_N6_INGRESS,
        layout.POINT_N6_EGRESS,
    ]
    assert points.GTPU_POINTS == (n3_in, n3_out) == points.QFI_POINTS
    assert [p.qfi_row for p in points.POINTS] == [0, 1, None, None]
    assert [p.direction for p in points.POINTS] == [UL, DL, DL, UL]
    assert [p.ingress for p in points.POINTS] == [True, False, True, False]
    assert points.entries(UL) == (n3_in,) and points.exits(UL) == (n6_out,)
    assert points.entries(DL) == (n6_in,) and points.exits(DL) == (n3_out,)
    assert (n3_in.role(UL), n3_in.role(DL), n3_out.role(DL)) == ("entry", None, "exit")
    assert points.named("n6-egress") is n6_out and points.point(2) is n6_in
    assert {p.id: p.name for p in points.POINTS} == layout.POINT_NAMES


def _header(tmp_path: Path, rows: str) -> Path:
    """The shared header with its point table's rows replaced."""
    text = shared_header().read_text()
    start = text.index("#define SAURON_POINT_TABLE(ROW)")
    end = text.index("\n\n", start)
    path = tmp_path / "sauron_shared.h"
    path.write_text(f"{text[:start]}#define SAURON_POINT_TABLE(ROW) \\\n{rows}{text[end:]}")
    return path


SHIPPED = """\
	ROW(N3_INGRESS, 0, SAURON_GTPU_SIDE, SAURON_INGRESS, SAURON_DIR_UPLINK, 0) \\
	ROW(N3_EGRESS, 1, SAURON_GTPU_SIDE, SAURON_EGRESS, SAURON_DIR_DOWNLINK, 1) \\
	ROW(N6_INGRESS, 2, SAURON_IP_SIDE, SAURON_INGRESS, SAURON_DIR_DOWNLINK, SAURON_NO_QFI_ROW) \\
	ROW(N6_EGRESS, 3, SAURON_IP_SIDE, SAURON_EGRESS, SAURON_DIR_UPLINK, SAURON_NO_QFI_ROW)"""


def test_the_rows_written_here_are_the_shipped_ones(tmp_path: Path) -> None:
    assert points.read_points(_header(tmp_path, SHIPPED)) == points.POINTS


def test_n9_rows_are_read_without_other_changes(tmp_path: Path) -> None:
    """An intermediate UPF's N9 side, towards the anchor UPF: GTP-U,
    downlink entering, uplink leaving (docs/data-path.md)."""
    n9 = (
        SHIPPED
        + " \\\n"
        + "\tROW(N9_INGRESS, 4, SAURON_GTPU_SIDE, SAURON_INGRESS, SAURON_DIR_DOWNLINK, 2) \\\n"
        + "\tROW(N9_EGRESS, 5, SAURON_GTPU_SIDE, SAURON_EGRESS, SAURON_DIR_UPLINK, 3)"
    )
    read = points.read_points(_header(tmp_path, n9))
    assert read[:4] == points.POINTS
    n9_in, n9_out = read[4:]
    assert (n9_in.name, n9_in.gtpu, n9_in.qfi_row, n9_in.role(DL)) == (
        "n9_ingress",
        True,
        2,
        "entry",
    )
    assert (n9_out.name, n9_out.gtpu, n9_out.qfi_row, n9_out.role(UL)) == (
        "n9_egress",
        True,
        3,
        "exit",
    )


@pytest.mark.parametrize(
    "rows",
    [
        # an id left out
        SHIPPED.replace("N6_EGRESS, 3,", "N6_EGRESS, 4,"),
        # two points on one qfi_stats row
        SHIPPED.replace("SAURON_DIR_DOWNLINK, 1)", "SAURON_DIR_DOWNLINK, 0)"),
        # a side that is not one
        SHIPPED.replace("N6_INGRESS, 2, SAURON_IP_SIDE", "N6_INGRESS, 2, 7"),
    ],
    ids=["id gap", "shared qfi row", "no such side"],
)
def test_a_bad_table_is_refused(tmp_path: Path, rows: str) -> None:
    with pytest.raises(ValueError, match="SAURON_POINT_TABLE"):
        points.read_points(_header(tmp_path, rows))
