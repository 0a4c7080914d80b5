import pytest

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
