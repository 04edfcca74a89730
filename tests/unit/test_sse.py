"""The event-stream parser and encoder: WHATWG rules, any chunking, bytes kept exactly."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetcache.core.sse import Event, SSEParser, encode, parse

# A recorded Anthropic stream (event + data lines, a ping, multi-byte UTF-8) followed by an
# OpenAI-style stream (data only, [DONE]), with CRLF, CR and LF line ends, a comment and a BOM.
RECORDED = (
    b"\xef\xbb\xbf: keep-alive comment\n\n"
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1"}}\n\n'
    b"event: ping\r\ndata: {}\r\n\r\n"
    b'event: content_block_delta\rdata: {"type":"content_block_delta","delta":'
    b'{"type":"text_delta","text":"H\xc3\xa9llo \xf0\x9f\x8c\x8d"}}\r\r'
    b"id: 7\nretry: 1500\ndata: first line\ndata:second line\ndata\n\n"
    b'data: {"choices":[]}\n\n'
    b"data: [DONE]\n\n"
)

EXPECTED = [
    Event('{"type":"message_start","message":{"id":"msg_1"}}', "message_start"),
    Event("{}", "ping"),
    Event(
        '{"type":"content_block_delta","delta":{"type":"text_delta","text":"Héllo 🌍"}}',
        "content_block_delta",
    ),
    Event("first line\nsecond line\n", "message", "7", 1500),
    Event('{"choices":[]}', "message", "7"),
    Event("[DONE]", "message", "7"),
]


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def test_recorded_stream_gives_the_spec_events() -> None:
    assert parse(RECORDED) == EXPECTED


@settings(max_examples=400, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=40))
def test_any_chunking_gives_the_same_events_and_keeps_every_byte(cuts: list[int]) -> None:
    parser = SSEParser()
    events: list[Event] = []
    raw = b""
    for chunk in split_at(RECORDED, cuts):
        for block in parser.feed(chunk):
            raw += block.raw
            if block.event is not None:
                events.append(block.event)
    assert events == EXPECTED
    assert raw + parser.close() == RECORDED


def test_one_byte_at_a_time_with_crlf_split_between_chunks() -> None:
    parser = SSEParser()
    blocks = [b for i in range(len(RECORDED)) for b in parser.feed(RECORDED[i : i + 1])]
    assert [b.event for b in blocks if b.event is not None] == EXPECTED
    assert b"".join(b.raw for b in blocks) == RECORDED


def test_a_cr_block_end_then_lf_in_the_next_chunk_is_one_line_end() -> None:
    parser = SSEParser()
    first = parser.feed(b"data: a\r\n\r")
    second = parser.feed(b"\ndata: b\n\n")
    assert [b.event for b in first] == [Event("a")]
    assert [b.raw for b in second] == [b"\n", b"data: b\n\n"]
    assert second[1].event == Event("b")


def test_incomplete_event_at_end_of_stream_is_dropped_and_returned() -> None:
    parser = SSEParser()
    blocks = parser.feed(b"data: done\n\ndata: half")
    assert [b.event for b in blocks] == [Event("done")]
    assert parser.pending == b"data: half"
    assert parser.close() == b"data: half"
    assert parser.feed(b"\n\n")[0].event is None  # the dropped event's data is gone


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        (b"data\n\n", [Event("")]),  # a field without a colon has an empty value
        (b"data:\n\n", [Event("")]),
        (b"data:  two spaces\n\n", [Event(" two spaces")]),  # only one space is dropped
        (b"event: x\n\n", []),  # no data: nothing dispatched, and the type is reset
        (b"event: x\n\ndata: y\n\n", [Event("y")]),
        (b"event:\ndata: y\n\n", [Event("y")]),  # an empty type is "message"
        (b"id: a\x00b\ndata: y\n\n", [Event("y")]),  # an id with NUL is ignored
        (b"id: 1\ndata: a\n\nid\ndata: b\n\n", [Event("a", id="1"), Event("b")]),
        (b"retry: 12a\ndata: y\n\n", [Event("y")]),  # not all digits: ignored
        (b"retry: 30\ndata: a\n\ndata: b\n\n", [Event("a", retry=30), Event("b")]),
        (b"unknown: z\ndata: y\n\n", [Event("y")]),
        (b"DATA: y\n\n", []),  # field names are case-sensitive
        (b"data: \xff\n\n", [Event("\ufffd")]),  # invalid UTF-8 is replaced
        (b"\xef\xbb\xbf\xef\xbb\xbfdata: y\n\n", []),  # only one BOM is dropped
    ],
)
def test_field_rules(stream: bytes, expected: list[Event]) -> None:
    assert parse(stream) == expected
    assert parse(stream[i : i + 1] for i in range(len(stream))) == expected


@settings(max_examples=200, deadline=None)
@given(
    st.text().filter(lambda s: "\x00" not in s),
    st.none()
    | st.text(
        alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), min_size=1
    ),
    st.none()
    | st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\r\n\x00")),
)
def test_encode_round_trips(data: str, event: str | None, event_id: str | None) -> None:
    parsed = parse(encode(data, event, id=event_id))
    expected_data = data.replace("\r\n", "\n").replace("\r", "\n")
    assert parsed == [Event(expected_data, event or "message", event_id or "")]


def test_encode_rejects_line_breaks_in_type_and_id() -> None:
    with pytest.raises(ValueError, match="event type"):
        encode("x", "a\nb")
    with pytest.raises(ValueError, match="event id"):
        encode("x", id="a\rb")


def test_encode_matches_the_usual_wire_form() -> None:
    payload = json.dumps({"type": "ping"})
    assert encode(payload, "ping") == b'event: ping\ndata: {"type": "ping"}\n\n'
    assert encode("[DONE]") == b"data: [DONE]\n\n"
