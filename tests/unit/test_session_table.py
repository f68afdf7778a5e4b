"""Session tables as columns: per-CPU copies and TEID slots merged, and the
activity between two readings, checked against a row-by-row reference."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sauron.abi import layout
from sauron.bpf.maps import delta
from sauron.bpf.session_table import (
    SESSION_DTYPE,
    SLOT_DTYPE,
    SessionCopies,
    SessionTable,
)
from sauron.kpi.sessions import session_activity


def session_row(
    packets: tuple[int, int],
    octets: tuple[int, int],
    slice_id: int,
    generation: int,
    qfi: int = 0,
    ue: bytes | None = None,
) -> bytes:
    row = layout.SessionStats(
        packets=packets,
        bytes=octets,
        slice_id=slice_id,
        rules_generation=generation,
        qfi=qfi,
        flags=layout.SESSION_HAS_UE if ue else 0,
    )
    if ue:
        row.ue_addr[:] = list(ue)
    return bytes(row).ljust(SESSION_DTYPE.itemsize, b"\0")


def slot_row(
    teid: int, packets: tuple[int, int], octets: tuple[int, int], slice_id: int, generation: int
) -> bytes:
    slot = layout.TeidSlot(
        teid=teid,
        rules_generation=generation,
        slice_id=slice_id,
        flags=layout.SESSION_VALID,
        qfi=9,
    )
    slot.packets[:] = list(packets)
    slot.bytes[:] = list(octets)
    return bytes(slot).ljust(SLOT_DTYPE.itemsize, b"\0")


def teid_keys(*teids: int) -> np.ndarray:
    return np.frombuffer(b"".join(t.to_bytes(4, "little") for t in teids), dtype="V4")


def test_copies_sum_and_the_newest_rules_name_the_slice() -> None:
    ue = bytes(10) + b"\xff\xff" + bytes([10, 45, 0, 7])
    copies = SessionCopies()
    table_rows = [
        session_row(
            (10, 0), (1000, 0), slice_id=1, generation=1
        ),  # TEID 7, CPU 0: busiest, old rules
        session_row((1, 2), (100, 200), slice_id=2, generation=2, qfi=5, ue=ue),  # TEID 7, CPU 1
        session_row((4, 0), (400, 0), slice_id=3, generation=2),  # TEID 8, CPU 0
        session_row((0, 0), (0, 0), slice_id=0, generation=0),  # TEID 8, CPU 1: never ran there
    ]
    copies.add(teid_keys(7, 7, 8, 8), np.frombuffer(b"".join(table_rows), dtype=SESSION_DTYPE))
    slots = [slot_row(8, (0, 6), (0, 600), slice_id=3, generation=2)]
    copies.add(teid_keys(8), np.frombuffer(b"".join(slots), dtype=SLOT_DTYPE))

    by_teid = {int.from_bytes(s.key, "little"): s for s in copies.merge(4)}

    assert set(by_teid) == {7, 8}
    assert by_teid[7].packets == [11, 2] and by_teid[7].bytes == [1100, 200]
    assert (by_teid[7].slice_id, by_teid[7].qfi, by_teid[7].ue_addr) == (2, 5, ue)
    assert by_teid[8].packets == [4, 6] and by_teid[8].bytes == [400, 600]
    assert (by_teid[8].slice_id, by_teid[8].qfi) == (3, 9), "the slot was the busier copy"


copy = st.tuples(
    st.sampled_from([0, 1, 0x100, 0x10000, 0x1000000, 0xFFFFFFFF, 0x01020304]),  # TEID
    st.integers(0, 3),  # uplink packets: small, so ties are common
    st.integers(0, 2),  # rules generation
    st.integers(0, 5),  # slice
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(copy, max_size=12), min_size=1, max_size=3))
def test_merge_matches_the_row_by_row_rule(parts: list[list[tuple[int, int, int, int]]]) -> None:
    """Every TEID's copies summed; its slice from the copy under the newest
    rules, then the busiest, then the last one added; the table sorted by
    the TEID's bytes as the kernel keeps them (little-endian)."""
    copies = SessionCopies()
    for part in parts:
        rows = [session_row((p, 0), (p * 100, 0), sl, g) for _, p, g, sl in part]
        copies.add(teid_keys(*(c[0] for c in part)), np.frombuffer(b"".join(rows), SESSION_DTYPE))
    merged = copies.merge(4)

    want: dict[int, list[int]] = {}
    best: dict[int, tuple[int, int, int]] = {}
    for teid, p, g, sl in (c for part in parts for c in part):
        want.setdefault(teid, [0, 0])[0] += p
        if teid not in best or (g, p) >= best[teid][:2]:
            best[teid] = (g, p, sl)
    keys = [bytes(k) for k in merged.keys]
    assert keys == sorted(t.to_bytes(4, "little") for t in want)
    for session in merged:
        teid = int.from_bytes(session.key, "little")
        assert session.packets == want[teid]
        assert session.slice_id == best[teid][2], teid


def test_no_copies_is_an_empty_table() -> None:
    assert len(SessionCopies().merge(16)) == 0
    assert session_activity(SessionTable.empty(4), SessionTable.empty(4), by_teid=True).active == {}


def table_of(sessions: dict[int, tuple[int, int, int, int, int]]) -> SessionTable:
    """TEID -> (uplink packets, downlink packets, uplink bytes, downlink bytes, slice)."""
    copies = SessionCopies()
    if sessions:
        rows = [session_row((p0, p1), (b0, b1), s, 1) for p0, p1, b0, b1, s in sessions.values()]
        copies.add(teid_keys(*sessions), np.frombuffer(b"".join(rows), dtype=SESSION_DTYPE))
    return copies.merge(4)


# below 2**63 a session's two directions add up inside 64 bits, as real
# counters do; small values make equal and reset counters likely
counts = st.integers(0, 2**63 - 1) | st.integers(0, 50)
session = st.tuples(counts, counts, counts, counts, st.integers(1, 3))
readings = st.dictionaries(st.integers(0, 40), session, max_size=30)


@settings(max_examples=200, deadline=None)
@given(before=readings, now=readings, top_n=st.integers(1, 5))
def test_activity_matches_the_row_by_row_rule(
    before: dict[int, tuple[int, int, int, int, int]],
    now: dict[int, tuple[int, int, int, int, int]],
    top_n: int,
) -> None:
    activity = session_activity(table_of(before), table_of(now), by_teid=True, top_n=top_n)

    expected_active: dict[int, int] = {}
    volumes: dict[int, list[tuple[int, int]]] = {}
    for teid, (p0, p1, b0, b1, slice_id) in now.items():
        old = before.get(teid, (0, 0, 0, 0, 0))
        packets = delta(p0, old[0]) + delta(p1, old[1])
        if packets == 0:
            continue
        expected_active[slice_id] = expected_active.get(slice_id, 0) + 1
        volumes.setdefault(slice_id, []).append((delta(b0, old[2]) + delta(b1, old[3]), teid))
    assert activity.active == expected_active
    assert set(activity.top) == set(volumes)
    for slice_id, rows in volumes.items():
        top = activity.top[slice_id]
        assert len(top) == min(top_n, len(rows))
        shown = [v.bytes for v in top]
        assert shown == sorted((b for b, _ in rows), reverse=True)[: len(top)]
        for v in top:
            old = before.get(v.teid or 0, (0, 0, 0, 0, 0))
            p0, p1, b0, b1, _ = now[v.teid or 0]
            assert (v.uplink_packets, v.downlink_packets) == (delta(p0, old[0]), delta(p1, old[1]))
            assert (v.uplink_bytes, v.downlink_bytes) == (delta(b0, old[2]), delta(b1, old[3]))
