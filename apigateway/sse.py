"""Server-sent events: an incremental decoder and an encoder. Pure, no IO.

The decoder follows the WHATWG event-stream rules that matter for LLM providers: lines end
in LF, CRLF or CR; `data:` lines of one event are joined with LF; `event:` names the event;
lines starting with `:` are comments; a blank line dispatches; an optional single space
after the colon is dropped. Chunks may split anywhere, even inside a CRLF or a UTF-8
character.

Most providers send each event as one `data: ` line and a blank line; when every event of
a read is such, they are taken with one decode and one split, without going line by line
(a stream's events often come in one read, and the time to the first token includes
decoding all of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(slots=True)
class SSEEvent:
    data: str
    event: str = "message"
    id: str | None = None


class SSEDecoder:
    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if not chunk:
            return []  # (and a CR that ended the last chunk may still be half of a CRLF)
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the LF of a CRLF split across two chunks
        self._pending_cr = chunk.endswith(b"\r")
        buffer = self._buffer + chunk
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = buffer.rfind(b"\n\n")  # the end of the last whole event
        events = self._plain_events(buffer, end) if end >= 0 else None
        if events is not None:
            tail = buffer[end + 2 :]
        else:
            *blocks, tail = buffer.split(b"\n\n")  # whole events, then what is left
            events = []
            for block in blocks:
                self._lines(block.split(b"\n"), events)
                if (event := self._line("")) is not None:  # the blank line that ended it
                    events.append(event)
        *lines, self._buffer = tail.split(b"\n")
        self._lines(lines, events)
        return events

    def _plain_events(self, buffer: bytes, end: int) -> list[SSEEvent] | None:
        """The whole events in `buffer[:end]` if each is one `data: ` line (what
        OpenAI-style providers send), taken with one decode and one split; else None."""
        if self._data or self._event or not buffer.startswith(b"data: "):
            return None
        text = buffer[6:end].decode("utf-8", "replace")
        datas = text.split("\n\ndata: ")
        if text.count("\n") != 2 * (len(datas) - 1):
            return None  # a line of another kind, or an event of several lines
        ident = self._id
        return [SSEEvent(data, "message", ident) for data in datas]

    def _lines(self, lines: list[bytes], events: list[SSEEvent]) -> None:
        for raw in lines:
            event = self._line(raw.decode("utf-8", errors="replace"))
            if event is not None:
                events.append(event)

    def flush(self) -> list[SSEEvent]:
        """End of stream: a final event without its blank line still counts."""
        events = self.feed(b"\n") if self._buffer else []
        if self._data:
            events.append(self._dispatch())
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            return self._dispatch() if self._data or self._event else None
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        return None

    def _dispatch(self) -> SSEEvent:
        event = SSEEvent("\n".join(self._data), self._event or "message", self._id)
        self._data, self._event = [], ""
        return event


def encode_data(payload: bytes) -> bytes:
    """One `data:` event; payload is compact JSON (no newlines), as OpenAI sends."""
    return b"data: " + payload + b"\n\n"


def encode_json(objects: list[Any]) -> bytes:
    """One `data:` event per object, as compact JSON (what encode_data does for each, in
    one call for all)."""
    return b"".join([b"data: " + orjson.dumps(item) + b"\n\n" for item in objects])


DONE = b"data: [DONE]\n\n"
