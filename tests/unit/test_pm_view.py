"""The 3GPP view over a window the history has folded: a folded step keeps
the N3 counts of every interval in it, so a window's TS 28.552 counts are
the sum of its intervals' however old they are."""

from __future__ import annotations

from sauron.catalog import load_catalog
from sauron.kpi.history import History
from sauron.kpi.records import N3Volume, SliceKpis, Snapshot
from sauron.service.documents import pm_doc


def _snapshot(t: float, catalog_names: list[str], n: int) -> Snapshot:
    slices = {
        name: SliceKpis(
            name=name,
            slice_id=i,
            snssai="",
            n3=N3Volume(g_pdus_in=n, octets_in=100 * n, g_pdus_out=2 * n, octets_out=300 * n),
        )
        for i, name in enumerate(catalog_names)
    }
    return Snapshot(time=t, interval_s=1.0, slices=slices)


def test_a_folded_window_keeps_every_intervals_n3_counts() -> None:
    catalog = load_catalog()
    names = ["unclassified", *(s.name for s in catalog.slices)]
    history = History(recent=2, fold=3, folded=10)
    for i in range(1, 9):  # 8 intervals: 6 of them folded into two steps of 3
        history.add(_snapshot(1000.0 + i, names, i))
    snaps = history.between()
    assert len(snaps) == 4 and snaps[0].interval_s == 3.0
    doc = pm_doc(snaps, catalog.slices, energy=False)
    total = sum(range(1, 9))
    assert doc["granularity_period"] == {
        "begin": 1000.0,
        "end": 1008.0,
        "seconds": 8.0,
        "intervals": 4,
    }
    embb = {m["name"]: m["value"] for m in doc["slices"][0]["measurements"]}
    assert embb["GTP.InDataPktN3UPF.SNSSAI"] == total
    assert embb["GTP.OutDataPktN3UPF.SNSSAI"] == 2 * total
    assert embb["GTP.InDataOctN3UPF.SNSSAI"] == 100 * total
    assert embb["GTP.OutDataOctN3UPF.SNSSAI"] == 300 * total
    # no energy estimate: no efficiency, by either method
    assert [m["value"] for m in doc["slices"][0]["measurements"][4:]] == [None, None]
