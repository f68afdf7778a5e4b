"""The Python view of sauron_shared.h against clang's view of it: bcc builds
ctypes types for every map from the C, and ours must match them field by
field."""

from __future__ import annotations

import ctypes
import re

import pytest

from sauron.abi import diagnosis_layout, energy_layout, layout, points
from sauron.abi.source import diagnosis_header, energy_header, shared_header
from sauron.bpf import libbpf
from sauron.bpf.loader import XDP, BpfObject, DataPlane

pytestmark = [pytest.mark.kernel]


def _fields(ctype: type) -> list[tuple[str, int, int]]:
    if not issubclass(ctype, ctypes.Structure):
        return [("", 0, ctypes.sizeof(ctype))]
    return [
        (name, getattr(ctype, name).offset, getattr(ctype, name).size)
        for name, *_ in ctype._fields_
    ]


@pytest.mark.parametrize("map_name", sorted(layout.MAP_LAYOUTS))
def test_map_types_match_clang(recording_dataplane: DataPlane, map_name: str) -> None:
    table = recording_dataplane.table(map_name)
    key_type, value_type = layout.MAP_LAYOUTS[map_name]
    # bcc widens a per-CPU scalar leaf to an array over CPUs; sLeaf keeps one
    leaf = getattr(table, "sLeaf", table.Leaf)
    assert ctypes.sizeof(table.Key) == ctypes.sizeof(key_type)
    assert ctypes.sizeof(leaf) == ctypes.sizeof(value_type)
    if issubclass(value_type, ctypes.Structure):
        assert _fields(leaf) == _fields(value_type)
    if issubclass(key_type, ctypes.Structure):
        assert _fields(table.Key) == _fields(key_type)


def test_parse_result_matches_clang(recording_dataplane: DataPlane) -> None:
    table = recording_dataplane.table("last_result")
    assert _fields(table.Leaf) == _fields(layout.ParseResult)


def test_map_sizes_come_from_the_header(recording_dataplane: DataPlane) -> None:
    dp = recording_dataplane
    cpus = libbpf.possible_cpus()  # the counter arrays are CPU-major
    rows = layout.POINTS * layout.MAX_SLICES * layout.DIRS
    assert dp.table("slice_stats").max_entries == cpus * rows
    assert dp.table("events").max_entries == cpus * layout.POINTS * layout.EVENTS
    assert dp.table("teid_slots").max_entries == cpus * layout.TEID_SLOTS
    assert dp.table("ue_slots").max_entries == cpus * layout.UE_SLOTS
    assert dp.table("teid_stats").max_entries == layout.TEID_STATS_ENTRIES
    assert dp.table("teid_slice").max_entries == layout.MAX_TEIDS
    assert dp.mapped("slice_stats", layout.SliceStats).rows == rows
    qfi_rows = layout.MAX_SLICES * layout.QFI_STATS_ROWS
    assert dp.table("qfi_stats").max_entries == cpus * qfi_rows
    assert dp.table("measure_xdp_prog").max_entries == layout.POINTS


def test_point_table_matches_clang() -> None:
    """sauron/abi/points.py's reading of SAURON_POINT_TABLE against the C's:
    the enumerators' ids and lib/point.h's answers for every point."""
    c = layout.constants()
    with BpfObject(["point_table.c"]) as probe:
        libbpf.test_run(int(probe.function("point_table_probe", XDP).fd), bytes(64))
        counts = [int(v.value) for v in probe.table("point_counts").values()]
        assert counts == [len(points.POINTS), len(points.QFI_POINTS)]
        assert counts == [layout.POINTS, layout.QFI_POINTS]
        rows = probe.table("point_rows")
        assert rows.max_entries == len(points.POINTS)
        for p in points.POINTS:
            r = rows[ctypes.c_uint32(p.id)]
            assert bytes(r.label).rstrip(b"\0").decode().lower() == p.name
            assert r.known == 1
            assert (
                r.side == c[{points.GTPU: "SAURON_GTPU_SIDE", points.IP: "SAURON_IP_SIDE"}[p.side]]
            )
            assert (
                r.hook
                == c[{points.INGRESS: "SAURON_INGRESS", points.EGRESS: "SAURON_EGRESS"}[p.hook]]
            )
            assert r.direction == p.direction
            assert r.qfi_row == (c["SAURON_NO_QFI_ROW"] if p.qfi_row is None else p.qfi_row)
            assert (r.sees_gtpu, r.is_ingress, r.is_egress) == (p.gtpu, p.ingress, p.egress)


def test_energy_map_types_match_clang() -> None:
    """The energy probe's maps, from sauron_energy.h, compiled but not
    attached."""
    with BpfObject(["energy.c"]) as probe:
        for name, (key_type, value_type) in energy_layout.MAP_LAYOUTS.items():
            table = probe.table(name)
            leaf = getattr(table, "sLeaf", table.Leaf)
            assert _fields(table.Key) == _fields(key_type), name
            assert _fields(leaf) == _fields(value_type), name
        assert probe.table("watched_time").max_entries == energy_layout.MAX_WATCHED
        assert probe.table("watched_tasks").max_entries == energy_layout.WATCHED_TASKS


def test_diagnosis_map_types_match_clang() -> None:
    """The diagnosis probe's maps, from sauron_diagnosis.h, compiled but not
    attached."""
    with BpfObject(["diagnosis.c"]) as probe:
        for name, (key_type, value_type) in diagnosis_layout.MAP_LAYOUTS.items():
            table = probe.table(name)
            leaf = getattr(table, "sLeaf", table.Leaf)
            assert _fields(table.Key) == _fields(key_type), name
            assert _fields(leaf) == _fields(value_type), name
        assert probe.table("diag_watched").max_entries == diagnosis_layout.WATCHED_TASKS
        assert probe.table("diag_culprits").max_entries == diagnosis_layout.CULPRITS
        assert probe.table("diag_drops").max_entries == diagnosis_layout.DROP_REASONS


def test_every_diagnosis_enumerator_is_read() -> None:
    text = diagnosis_header().read_text()
    declared = set(re.findall(r"^\s*(SAURON_\w+)\s*=", text, re.M))
    assert declared and declared <= set(diagnosis_layout.constants())
    assert not declared & set(layout.constants()), "one owner per value"


def test_every_energy_enumerator_is_read() -> None:
    text = energy_header().read_text()
    declared = set(re.findall(r"^\s*(SAURON_\w+)\s*=", text, re.M))
    assert declared and declared <= set(energy_layout.constants())
    assert not declared & set(layout.constants()), "one owner per value"


def test_every_enumerator_is_read() -> None:
    text = shared_header().read_text()
    declared = set(re.findall(r"^\s*(SAURON_\w+)\s*=", text, re.M))
    assert declared <= set(layout.constants())
    assert layout.ANOMALY_NAMES[layout.ANOMALY_FIRST] == "eth_truncated"
    assert max(layout.ANOMALY_NAMES) < layout.EVENTS
    assert max(layout.EVENT_NAMES) < layout.ANOMALY_FIRST


def test_column_readers_read_what_ctypes_reads() -> None:
    """Two per-CPU copies laid out one kernel stride apart, as a batch
    lookup returns them, read through the numpy views."""
    import numpy as np

    from sauron.bpf.session_table import SESSION_DTYPE, SLOT_DTYPE

    copies = []
    for cpu in range(2):
        stats = layout.SessionStats(
            packets=(1 + cpu, 2), bytes=(3, 4), slice_id=5, rules_generation=6, qfi=7, flags=8
        )
        stats.ue_addr[:] = list(range(16))
        copies.append(bytes(stats).ljust(SESSION_DTYPE.itemsize, b"\0"))
    rows = np.frombuffer(b"".join(copies), dtype=SESSION_DTYPE)
    assert rows["packets"].tolist() == [[1, 2], [2, 2]]
    assert rows["bytes"].tolist() == [[3, 4], [3, 4]]
    assert [int(rows[n][1]) for n in ("slice_id", "rules_generation", "qfi", "flags")] == [
        5,
        6,
        7,
        8,
    ]
    assert rows["ue_addr"][1].tobytes() == bytes(range(16))

    slot = layout.TeidSlot(teid=9, rules_generation=10, slice_id=11, flags=12, qfi=13)
    slot.packets[:] = [14, 15]
    slot.bytes[:] = [16, 17]
    (row,) = np.frombuffer(bytes(slot).ljust(SLOT_DTYPE.itemsize, b"\0"), dtype=SLOT_DTYPE)
    assert [int(row[n]) for n in ("teid", "rules_generation", "slice_id", "flags", "qfi")] == [
        9,
        10,
        11,
        12,
        13,
    ]
    assert row["packets"].tolist() == [14, 15] and row["bytes"].tolist() == [16, 17]
