"""A body over GATEWAY_MAX_BODY_BYTES is refused (413, OpenAI's error format) before it is
read whole: from its Content-Length while most of it has not been sent, and, for a chunked
body that never ends, as soon as what arrived passes the limit. A body that stops arriving
before its end is refused (408) instead of waited for. Raw sockets, so that the client sends
exactly what the test says and no more."""

from __future__ import annotations

import select
import socket
import time

import orjson

from apigateway import asgi_io
from tests import raw_http
from tests.raw_http import chat_head, connect

LIMIT = 1000


def read_response(sock: socket.socket) -> tuple[int, dict]:
    """The status and the JSON body of one answer."""
    status, _, body = raw_http.read_response(sock)
    return int(status.split(b" ", 2)[1]), orjson.loads(body)


def assert_too_large(status: int, body: dict) -> None:
    assert status == 413
    assert body["error"]["code"] == "request_too_large"
    assert body["error"]["type"] == "invalid_request_error"
    assert set(body["error"]) == {"message", "type", "param", "code"}


def test_a_declared_length_over_the_limit_is_413_with_most_of_the_body_unsent(
    tenant, fake_openai, settings
):
    settings.GATEWAY_MAX_BODY_BYTES = LIMIT
    with connect(tenant.url) as sock:
        sock.sendall(chat_head(tenant.key, f"Content-Length: {LIMIT + 1}") + b'{"model": ')
        started = time.monotonic()
        status, body = read_response(sock)  # the other 991 bytes are never sent
        assert time.monotonic() - started < 2
    assert_too_large(status, body)
    assert fake_openai.requests == []


def test_a_chunked_body_that_keeps_coming_is_413_once_it_passes_the_limit(
    tenant, fake_openai, settings
):
    settings.GATEWAY_MAX_BODY_BYTES = LIMIT
    chunk = b"100\r\n" + b" " * 0x100 + b"\r\n"  # 256 bytes a chunk, and no last chunk
    sent = 0
    with connect(tenant.url) as sock:
        sock.sendall(chat_head(tenant.key, "Transfer-Encoding: chunked") + b'5\r\n{"a":\r\n')
        deadline = time.monotonic() + 5
        while not select.select([sock], [], [], 0.01)[0]:
            assert time.monotonic() < deadline, "no answer while the body kept coming"
            assert sent < 100 * LIMIT, "the body was read far past the limit"
            sock.sendall(chunk)
            sent += 0x100
        status, body = read_response(sock)
    assert_too_large(status, body)
    assert sent > LIMIT - 5
    assert fake_openai.requests == []


def test_a_body_that_stops_arriving_is_408_not_waited_for(tenant, fake_openai, monkeypatch):
    monkeypatch.setattr(asgi_io, "BODY_IDLE_SECONDS", 0.5)
    with connect(tenant.url) as sock:
        sock.sendall(chat_head(tenant.key, "Content-Length: 100") + b'{"model": ')
        started = time.monotonic()
        status, body = read_response(sock)  # the other 90 bytes never come
        assert time.monotonic() - started < 3
    assert status == 408
    assert body["error"]["code"] == "request_timeout"
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert fake_openai.requests == []


def test_a_slow_but_steady_body_is_read(tenant, fake_openai, monkeypatch):
    """The time limit is on a pause, not on the whole body."""
    monkeypatch.setattr(asgi_io, "BODY_IDLE_SECONDS", 0.5)
    payload = orjson.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    pieces = [payload[i : i + 20] for i in range(0, len(payload), 20)]
    with connect(tenant.url) as sock:
        sock.sendall(chat_head(tenant.key, f"Content-Length: {len(payload)}"))
        for piece in pieces:  # 0.25 s apart: longer than the limit in all
            time.sleep(0.25)
            sock.sendall(piece)
        status, body = read_response(sock)
    assert status == 200, body
    assert len(pieces) * 0.25 > 0.5
