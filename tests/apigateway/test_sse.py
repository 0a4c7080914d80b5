"""The SSE decoder and encoder (apigateway.sse), pure: event names, multi-line data,
comments, CRLF and reads split anywhere (a multi-byte character too), checked against the
WHATWG rules by Hypothesis on both the fast path for plain data events and the general one."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apigateway.sse import DONE, SSEDecoder, SSEEvent, encode_data

STREAM = (
    b": comment line\n"
    b"event: message_start\n"
    b'data: {"a": 1}\n'
    b"\n"
    b"data: line one\n"
    b"data: line two\n"
    b"\n"
    b"data:no-space\r\n\r\n"
    b"id: 7\r\n"
    b"event: ping\r\n"
    b"data: {}\r\n"
    b"\r\n"
)
EXPECTED = [
    SSEEvent('{"a": 1}', "message_start"),
    SSEEvent("line one\nline two"),
    SSEEvent("no-space"),
    SSEEvent("{}", "ping", "7"),
]


def test_decodes_event_names_multiline_data_comments_and_crlf():
    decoder = SSEDecoder()
    assert decoder.feed(STREAM) + decoder.flush() == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64])
def test_chunks_may_split_anywhere(size):
    decoder = SSEDecoder()
    events = []
    for start in range(0, len(STREAM), size):
        events += decoder.feed(STREAM[start : start + size])
    assert events + decoder.flush() == EXPECTED


def test_a_split_multibyte_character_survives():
    data = "data: héllo ✓\n\n".encode()
    decoder = SSEDecoder()
    events = []
    for index in range(len(data)):
        events += decoder.feed(data[index : index + 1])
    assert events == [SSEEvent("héllo ✓")]


def test_a_last_event_without_blank_line_is_flushed():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: [DONE]") == []
    assert decoder.flush() == [SSEEvent("[DONE]")]


def test_encoding():
    assert encode_data(b'{"x":1}') == b'data: {"x":1}\n\n'
    assert DONE == b"data: [DONE]\n\n"


def reference_events(stream: bytes) -> list[SSEEvent]:
    """The WHATWG rules, line by line over the whole stream at once (what the decoder
    must agree with however the stream is cut, fast path or not)."""
    text = stream.replace(b"\r\n", b"\n").replace(b"\r", b"\n").decode("utf-8", "replace")
    *lines, last = text.split("\n")
    if last:
        lines.append(last)  # a last line without its line end still counts, at the end
    data: list[str]
    events, data, name, last_id = [], [], "", None
    for line in lines:
        if not line:
            if data or name:
                events.append(SSEEvent("\n".join(data), name or "message", last_id))
            data, name = [], ""
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            data.append(value)
        elif field == "event":
            name = value
        elif field == "id":
            last_id = value
    if data:
        events.append(SSEEvent("\n".join(data), name or "message", last_id))
    return events


LINES = st.sampled_from(
    [
        b'data: {"a":1}',
        b"data: [DONE]",
        b"data:tight",
        b"data: h\xc3\xa9llo",
        b"data: ",
        b"event: ping",
        b"id: 9",
        b": keep-alive",
        b"",
        b"",
        b"",
    ]
)
ENDINGS = st.sampled_from([b"\n", b"\n", b"\r\n", b"\r"])


@settings(max_examples=400, deadline=None)
@given(
    lines=st.lists(st.tuples(LINES, ENDINGS), max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
)
def test_any_stream_cut_anywhere_decodes_as_the_rules_say(lines, cuts):
    stream = b"".join(line + ending for line, ending in lines)
    assert decoded_in_reads(stream, cuts) == reference_events(stream)


def decoded_in_reads(stream: bytes, cuts: list[int]) -> list[SSEEvent]:
    """What the decoder makes of `stream` fed in reads that end at `cuts` (any integers)."""
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    start = 0
    for cut in [*sorted(cut % (len(stream) + 1) for cut in cuts), len(stream)]:
        events += decoder.feed(stream[start:cut])
        start = cut
    return events + decoder.flush()


# Streams made mostly of one-line `data: ` events, as OpenAI-style providers send them (the
# decoder takes a read made only of those in one decode and one split), now and then with
# a line of another kind, an extra blank line or a CRLF, to cross into the general path.
PLAIN_EVENTS = st.sampled_from(
    [
        b'data: {"choices":[{"delta":{"content":"data: x"}}]}\n\n',
        b"data: [DONE]\n\n",
        b"data: h\xc3\xa9llo \xe2\x9c\x93\n\n",
        b"data: \n\n",
        b"data:  two spaces\n\n",
        b"data: a\r\n\r\n",
        b"data: a\ndata: b\n\n",
        b"event: ping\ndata: {}\n\n",
        b"\n",
        b": keep-alive\n\n",
    ]
)


@settings(max_examples=400, deadline=None)
@given(
    events=st.lists(PLAIN_EVENTS, max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=900), max_size=4),
)
def test_reads_of_plain_data_events_decode_as_the_rules_say(events, cuts):
    stream = b"".join(events)
    assert decoded_in_reads(stream, cuts) == reference_events(stream)


def test_a_read_of_plain_events_keeps_the_last_id_and_its_unfinished_tail():
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 4\n\n") == []
    assert decoder.feed(b'data: {"a":1}\n\ndata: [DONE]\n\ndata: par') == [
        SSEEvent('{"a":1}', "message", "4"),
        SSEEvent("[DONE]", "message", "4"),
    ]
    assert decoder.feed(b"tial\n\n") == [SSEEvent("partial", "message", "4")]
