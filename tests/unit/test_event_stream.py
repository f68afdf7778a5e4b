"""The client's reading of server-sent events follows the format of the
HTML standard, whatever server wrote them: CRLF, LF or CR line ends,
comments, a space after the colon or none, data over several lines, ids
and retry kept, and the text cut anywhere between reads."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sauron.service.events import Event, EventStreamReader, parse_events, snapshot_event

#: the same two events, written as three servers might
WRITTEN = (
    ': ping\r\n\r\nevent: snapshot\r\ndata: {"a":\r\ndata: 1}\r\nid: 7\r\nretry: 1500\r\n\r\n'
    "data:plain\r\n\r\n",
    ': ping\n\nevent: snapshot\ndata: {"a":\ndata: 1}\nid: 7\nretry: 1500\n\ndata:plain\n\n',
    # a CR the text ends with may be half a CRLF: the reader waits for what
    # follows it (here a last ping)
    ': ping\r\revent: snapshot\rdata: {"a":\rdata: 1}\rid: 7\rretry: 1500\r\rdata:plain\r\r'
    ": ping\r",
)
EXPECTED = [Event("snapshot", '{"a":\n1}', "7"), Event("message", "plain", "7")]


def test_every_line_end_reads_alike() -> None:
    for text in WRITTEN:
        reader = EventStreamReader()
        assert reader.feed(text) == EXPECTED, repr(text)
        assert reader.retry_ms == 1500 and reader.last_id == "7"


@given(st.sampled_from(WRITTEN), st.lists(st.integers(min_value=0, max_value=200), max_size=8))
def test_the_text_may_arrive_cut_anywhere(text: str, cuts: list[int]) -> None:
    reader = EventStreamReader()
    events: list[Event] = []
    start = 0
    for cut in sorted({min(c, len(text)) for c in cuts}):
        events += reader.feed(text[start:cut])
        start = cut
    events += reader.feed(text[start:])
    assert events == EXPECTED


def test_an_event_without_data_is_none_and_a_restart_drops_half_an_event() -> None:
    reader = EventStreamReader()
    assert reader.feed("event: snapshot\n\nid: 3\ndata: half") == []
    reader.restart()
    assert reader.feed("data: whole\n\n") == [Event("message", "whole", "3")]


def test_sauron_s_own_events_read_back() -> None:
    text = snapshot_event(b'{"time": 1.0}').decode() + snapshot_event(b'{"time": 2.0}').decode()
    assert parse_events(text) == [{"time": 1.0}, {"time": 2.0}]
