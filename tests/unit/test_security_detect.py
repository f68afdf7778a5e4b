"""The detections over the data path's security observations: a scan opens
once a second holds the threshold of distinct unknown TEIDs from one source,
then every later observation of that source grows the same event (across
intervals, however slowly) until it has been quiet; a spoofing UE likewise
per TEID; below the threshold nothing opens; the held observations are
bounded in time."""

from __future__ import annotations

from sauron.abi import layout
from sauron.security.detect import SPOOFING_UE, TEID_SCAN, Detector, Observation, detect


def unknown(teid: int, at: float, source: str = "203.0.113.9", count: int = 1) -> Observation:
    return Observation(layout.SEC_UNKNOWN_TEID, teid, source, source, 1, at, at, count)


def spoofed(source: str, at: float, teid: int = 0x100) -> Observation:
    return Observation(layout.SEC_UE_SOURCE_SPOOFED, teid, source, "192.0.2.10", 2, at, at, 1)


def test_a_scan_opens_at_the_threshold_and_grows_until_quiet() -> None:
    detector = Detector(scan_threshold=16, quiet_s=10.0)
    # 15 TEIDs in the first second: not yet a scan
    assert detector.feed([unknown(t, 100 + t / 100) for t in range(15)], 101.0) == []
    # the 16th, 0.5 s later: the window holds 16, the event takes all 16
    opened = detector.feed([unknown(15, 100.5)], 102.0)
    assert [(e.kind, e.count, e.distinct, e.ongoing) for e in opened] == [(TEID_SCAN, 16, 16, True)]
    assert opened[0].teids == tuple(range(8)) and opened[0].first_seen == 100.0
    # a slow tail: one TEID every few seconds is the same event
    grown = detector.feed([unknown(100, 105.0, count=3)], 106.0)
    assert [(e.id, e.count, e.distinct, e.last_seen) for e in grown] == [
        (opened[0].id, 19, 17, 105.0)
    ]
    assert detector.feed([], 114.0) == []  # quiet for 9 s: still open
    ended = detector.feed([], 115.5)
    assert [(e.id, e.ongoing, e.count) for e in ended] == [(opened[0].id, False, 19)]
    # a later burst from the same source is a new event
    again = detector.feed([unknown(t, 200 + t / 1000) for t in range(16)], 201.0)
    assert len(again) == 1 and again[0].id != opened[0].id
    assert [e.id for e in detector.events()] == [opened[0].id, again[0].id]
    assert detector.opened == {(1, TEID_SCAN): 2}


def test_below_the_threshold_or_spread_out_nothing_opens() -> None:
    detector = Detector(scan_threshold=16)
    # 16 TEIDs, but never 16 within one second
    for t in range(16):
        assert detector.feed([unknown(t, 100 + t * 0.2)], 100 + t * 0.2) == []
    # another source's TEIDs do not add to this one's
    assert detector.feed([unknown(t, 104.0, source="198.51.100.1") for t in range(15)], 104) == []
    assert detector.events() == []


def test_held_observations_are_forgotten_after_the_retention() -> None:
    detector = Detector(scan_threshold=4, retain_s=2.0)
    detector.feed([unknown(t, 100.0) for t in range(3)], 100.0)
    detector.feed([], 103.0)  # the three are older than 2 s: gone
    assert detector.feed([unknown(9, 103.0)], 103.0) == []
    assert detector.feed([unknown(t, 103.5) for t in (10, 11)], 103.5) == []
    assert [e.distinct for e in detector.feed([unknown(12, 103.6)], 103.6)] == [4]


def test_a_spoofing_ue_is_per_teid_and_counts_sources() -> None:
    rows = [spoofed(f"10.99.0.{i}", 50 + i / 10) for i in range(5)]
    rows += [spoofed("10.99.0.1", 50.2, teid=0x200)]  # another session: apart
    events = detect(rows, spoof_threshold=4)
    assert [(e.kind, e.teids, e.distinct, e.count, e.slice_id, e.peer) for e in events] == [
        (SPOOFING_UE, (0x100,), 5, 5, 2, "192.0.2.10")
    ]
    assert not events[0].ongoing


def test_a_replay_splits_bursts_apart_by_the_quiet_time() -> None:
    rows = [unknown(t, 10 + t / 100) for t in range(20)]
    rows += [unknown(t, 40 + t / 100) for t in range(20)]
    events = detect(rows, scan_threshold=16)
    assert [(e.first_seen, e.count) for e in events] == [(10.0, 20), (40.0, 20)]
