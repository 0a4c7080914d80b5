"""The HTTP protocol that serves /v1 through its own exchange (apigateway/server.py) keeps
uvicorn's behaviour on the wire: raw sockets, so that the test sends exactly these bytes.

The rest of the suite runs every /v1 call through it too (the gateway under test is served
with it, as `make run` does)."""

from __future__ import annotations

import time

import pytest

from apigateway import app as gateway_app
from apigateway import asgi_io
from apigateway.server import response_head
from tests.raw_http import chat_head, connect, read_response

DEFAULTS = [(b"date", b"Thu, 26 Nov 2026 12:00:00 GMT"), (b"server", b"uvicorn")]


def test_a_response_with_a_length_keeps_the_connection_and_is_not_chunked():
    head, length, keep_alive = response_head(
        200, [(b"content-type", b"application/json"), (b"content-length", b"12")], DEFAULTS, True
    )
    assert head == (
        b"HTTP/1.1 200 OK\r\ndate: Thu, 26 Nov 2026 12:00:00 GMT\r\nserver: uvicorn\r\n"
        b"content-type: application/json\r\ncontent-length: 12\r\n\r\n"
    )
    assert (length, keep_alive) == (12, True)


def test_a_response_without_a_length_is_chunked():
    head, length, _ = response_head(200, [(b"content-type", b"text/event-stream")], [], True)
    assert head.endswith(b"transfer-encoding: chunked\r\n\r\n")
    assert length is None


def test_a_204_is_neither_chunked_nor_given_a_length():
    head, length, _ = response_head(204, [], [], True)
    assert head == b"HTTP/1.1 204 No Content\r\n\r\n"
    assert length is None


def test_connection_close_from_the_app_or_the_client_is_said_once():
    head, _, keep_alive = response_head(
        200, [(b"content-length", b"0"), (b"connection", b"Close")], [], True
    )
    assert head.lower().count(b"connection:") == 1
    assert keep_alive is False
    head, _, keep_alive = response_head(200, [(b"content-length", b"0")], [], False)
    assert head.count(b"connection: close") == 1
    assert keep_alive is False


@pytest.mark.parametrize(
    "headers",
    [
        [(b"x-ok", b"fine"), (b"x-bad", b"a\r\nset-cookie: stolen=1")],
        [(b"x-bad", b"a\nb")],
        [(b"x-bad", b"cr\ronly")],
        [(b"x-bad", b"nul\x00")],
        [(b"x-bad\r\nset-cookie", b"stolen=1")],
    ],
)
def test_a_header_that_would_break_the_framing_is_refused(headers):
    with pytest.raises(RuntimeError):
        response_head(200, headers, [], True)


def test_a_tab_in_a_value_is_allowed():
    head, _, _ = response_head(200, [(b"x-ok", b"a\tb"), (b"content-length", b"0")], [], True)
    assert b"x-ok: a\tb\r\n" in head


# --- on the wire -----------------------------------------------------------------------


def chat_request(key: str, body: bytes, *extra: str, length: int | None = None) -> bytes:
    """The request's bytes; with `length`, only its head, declaring that many body bytes."""
    if length is not None:
        return chat_head(key, f"Content-Length: {length}", *extra)
    return chat_head(key, f"Content-Length: {len(body)}", *extra) + body


GET_MODELS = b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def answer_then_close(url: str, request: bytes) -> tuple[bytes, dict, bytes]:
    """Send `request`, read one answer, and check that the server then closes."""
    with connect(url) as sock:
        sock.sendall(request)
        answer = read_response(sock)
        assert sock.recv(1) == b"", "the connection stayed open"
    return answer


def everything_until_closed(url: str, request: bytes) -> bytes:
    """All the server sends after `request` until it closes (the socket's 5 s time-out
    fails a connection that stays open)."""
    received = bytearray()
    with connect(url) as sock:
        sock.sendall(request)
        while chunk := sock.recv(65536):
            received += chunk
    return bytes(received)


CHAT = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]}'


def test_v1_answers_carry_uvicorns_date_and_server_headers(gateway_url):
    with connect(gateway_url) as sock:
        sock.sendall(b"GET /v1/openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, headers, body = read_response(sock, bytearray())
    assert status == b"HTTP/1.1 200 OK"
    assert headers["server"] == "uvicorn" and headers["date"].endswith("GMT")
    assert body.startswith(b"{")


def test_pipelined_requests_on_one_connection_are_answered_in_order(tenant):
    """A chat call, an unauthenticated one, the dashboard's probe and the OpenAPI document,
    sent in one write: four answers, in order, on the same connection."""
    requests = (
        chat_request(tenant.key, CHAT)
        + chat_request("nex-sk-wrong", CHAT)
        + b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        + b"GET /v1/openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    )
    buffered = bytearray()
    with connect(tenant.url) as sock:
        sock.sendall(requests)
        answers = [read_response(sock, buffered) for _ in range(4)]
    assert [status for status, _, _ in answers] == [
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 401 Unauthorized",
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 200 OK",
    ]
    assert b'"chat.completion"' in answers[0][2]
    assert b'"invalid_api_key"' in answers[1][2]
    assert b'"ok"' in answers[2][2]
    assert b'"openapi"' in answers[3][2]


def test_expect_100_continue_is_answered_before_the_body_is_sent(tenant):
    with connect(tenant.url) as sock:
        sock.sendall(chat_request(tenant.key, CHAT, "Expect: 100-continue", length=len(CHAT)))
        interim = sock.recv(65536)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(CHAT)
        status, _, body = read_response(sock, bytearray())
    assert status == b"HTTP/1.1 200 OK"
    assert b'"chat.completion"' in body


def test_a_refused_call_with_expect_100_continue_gets_no_interim_answer(gateway_url):
    """The key is checked before the body is asked for: the client need not send it."""
    with connect(gateway_url) as sock:
        sock.sendall(chat_request("nex-sk-wrong", b"", "Expect: 100-continue", length=5000))
        status, _, body = read_response(sock, bytearray())
    assert status == b"HTTP/1.1 401 Unauthorized"
    assert b"100 Continue" not in body


def test_an_http_1_0_request_is_answered_and_the_connection_closed(gateway_url):
    status, headers, _ = answer_then_close(gateway_url, b"GET /v1/openapi.json HTTP/1.0\r\n\r\n")
    assert status == b"HTTP/1.1 200 OK"
    assert headers["connection"] == "close"


def test_a_stream_is_chunked_and_ends_with_the_last_chunk(tenant):
    body = CHAT[:-1] + b', "stream": true}'
    with connect(tenant.url) as sock:
        sock.sendall(chat_request(tenant.key, body))
        status, headers, stream = read_response(sock, bytearray())
    assert status == b"HTTP/1.1 200 OK"
    assert headers["content-type"].startswith("text/event-stream")
    assert stream.endswith(b"data: [DONE]\n\n")


def test_head_and_percent_encoded_paths_take_uvicorns_own_road(gateway_url):
    with connect(gateway_url) as sock:
        sock.sendall(b"HEAD /v1/openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 405 ")  # the gateway's answer, with no body after it
    assert head.endswith(b"\r\n\r\n")
    with connect(gateway_url) as sock:
        sock.sendall(b"GET /v1/%6Fpenapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, _, body = read_response(sock, bytearray())
    assert status == b"HTTP/1.1 200 OK"
    assert body.startswith(b"{")


def test_a_chat_call_on_uvicorns_own_road_is_answered_with_asgi_messages(tenant):
    """An escaped path reaches the gateway through nexeon.asgi, with no `nexeon.respond`:
    the whole answer then goes as two ASGI messages (app._Response.json's other branch)."""
    request = chat_request(tenant.key, CHAT).replace(
        b"POST /v1/chat/completions", b"POST /v1/%63hat/completions"
    )
    with connect(tenant.url) as sock:
        sock.sendall(request)
        status, headers, body = read_response(sock)
    assert status == b"HTTP/1.1 200 OK"
    assert int(headers["content-length"]) == len(body)
    assert b'"chat.completion"' in body and "x-nexeon-cost" in headers


@pytest.fixture
def failing_gateway(monkeypatch):
    """The gateway app replaced, for connections opened from now on. Only the gateway
    protocol looks it up there (nexeon.asgi holds its own reference), so these tests also
    show that /v1 is served through it."""

    def use(app):
        monkeypatch.setattr(gateway_app, "application", app)

    return use


def test_an_app_that_fails_before_answering_gives_a_500_and_closes(gateway_url, failing_gateway):
    async def broken(scope, receive, send):
        raise RuntimeError("boom")

    failing_gateway(broken)
    status, headers, body = answer_then_close(gateway_url, GET_MODELS)
    assert status == b"HTTP/1.1 500 Internal Server Error"
    assert headers["connection"] == "close"
    assert body == b"Internal Server Error"


def test_an_app_that_fails_mid_answer_has_its_connection_closed(gateway_url, failing_gateway):
    async def half(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        raise RuntimeError("boom")

    failing_gateway(half)
    received = everything_until_closed(gateway_url, GET_MODELS)
    assert b"transfer-encoding: chunked" in received
    assert received.endswith(b"9\r\ndata: 1\n\n\r\n")  # no last chunk: the client sees a cut


def test_an_app_that_sends_more_than_its_length_gets_a_500(gateway_url, failing_gateway):
    """A whole answer's head waits for its body, so a body that contradicts it is caught
    before anything was written: the client gets a clean 500, never the bad bytes."""

    async def liar(scope, receive, send):
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
        )
        await send({"type": "http.response.body", "body": b"too long"})

    failing_gateway(liar)
    received = everything_until_closed(gateway_url, GET_MODELS)
    assert received.startswith(b"HTTP/1.1 500 Internal Server Error")
    assert b"too long" not in received


@pytest.mark.parametrize("take_body", ["read_body", "receive"])
def test_once_the_body_is_read_receive_waits_for_the_client_to_leave(
    gateway_url, failing_gateway, take_body
):
    """What the stream relay relies on to notice a client that leaves mid-stream: after the
    body, receive() blocks until the disconnect (it must not return at once, forever)."""
    import asyncio
    import threading

    seen: list = []
    finished = threading.Event()

    async def streamer(scope, receive, send):
        if take_body == "read_body":
            seen.append(await asgi_io.read_body(scope, receive, 1000))
        else:
            seen.append((await receive())["body"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        try:
            async with asyncio.timeout(5):
                await asgi_io.wait_for_disconnect(receive)
            seen.append(time.monotonic())
        finally:
            finished.set()

    failing_gateway(streamer)
    with connect(gateway_url) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        sock.sendall(b"Content-Length: 5\r\n\r\nhello")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
        time.sleep(0.3)
        left = time.monotonic()
    assert finished.wait(5)
    assert seen[0] == b"hello"
    assert len(seen) == 2, "receive() did not report the disconnect"
    assert seen[1] >= left


def test_a_whole_answer_sent_in_one_call_keeps_the_connection(gateway_url, failing_gateway):
    """`nexeon.respond` (what a chat answer uses): head and body at once, keep-alive kept;
    a declared length that does not match the body is refused before anything is written."""

    async def whole(scope, receive, send):
        respond = scope["extensions"]["nexeon.respond"]
        if scope["path"] == "/v1/good":
            respond(200, [(b"content-length", b"5"), (b"x-one", b"1")], b"hello")
        else:
            respond(200, [(b"content-length", b"9")], b"hello")

    failing_gateway(whole)
    buffered = bytearray()
    with connect(gateway_url) as sock:
        sock.sendall(b"GET /v1/good HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 2)
        first = read_response(sock, buffered)
        second = read_response(sock, buffered)
        sock.sendall(b"GET /v1/bad HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        third = read_response(sock, buffered)
    assert first[0] == second[0] == b"HTTP/1.1 200 OK"
    assert first[1]["x-one"] == "1" and first[2] == second[2] == b"hello"
    assert third[0] == b"HTTP/1.1 500 Internal Server Error"


def test_a_streams_head_leaves_with_its_first_event(gateway_url, failing_gateway):
    """The head is held back until the first body bytes, so that they leave in one write
    (the gateway sends its 200 with the provider's first event)."""
    import asyncio

    async def slow_start(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(0.5)
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    failing_gateway(slow_start)
    with connect(gateway_url) as sock:
        sock.sendall(GET_MODELS)
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(65536)  # nothing yet: the head waits for the event
        sock.settimeout(5)
        status, headers, body = read_response(sock)
    assert status == b"HTTP/1.1 200 OK"
    assert headers["transfer-encoding"] == "chunked"
    assert body == b"data: 1\n\n"


@pytest.mark.parametrize("ending", ["client leaves", "answer completes", "stopped watching"])
def test_on_disconnect_reports_a_client_that_leaves_mid_answer_only(
    gateway_url, failing_gateway, ending
):
    """`nexeon.on_disconnect` (what the stream relay uses instead of a task on receive()):
    called once the connection drops before the answer is complete, never after it, and
    not once the app stopped watching."""
    import asyncio
    import threading

    called = threading.Event()
    finished = threading.Event()

    async def watched(scope, receive, send):
        stop = scope["extensions"]["nexeon.on_disconnect"](called.set)
        if ending == "stopped watching":
            stop()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        if ending == "answer completes":
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        await asyncio.sleep(1)  # (the client leaves meanwhile)
        finished.set()

    failing_gateway(watched)
    with connect(gateway_url) as sock:
        sock.sendall(GET_MODELS)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
    assert finished.wait(5)
    assert called.is_set() == (ending == "client leaves")


def test_on_disconnect_after_the_client_left_calls_back_at_once(gateway_url, failing_gateway):
    import asyncio
    import threading

    calls: list[str] = []
    finished = threading.Event()

    async def late(scope, receive, send):
        await asgi_io.wait_for_disconnect(receive)  # the client is gone by now
        scope["extensions"]["nexeon.on_disconnect"](lambda: calls.append("gone"))
        await asyncio.sleep(0)
        finished.set()

    failing_gateway(late)
    with connect(gateway_url) as sock:
        sock.sendall(b"POST /v1/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\n\r\nx")
    assert finished.wait(5)
    assert calls == ["gone"]


def test_a_stream_that_fails_before_its_first_event_gets_a_clean_500(gateway_url, failing_gateway):
    """Its head was held back, so nothing of the 200 has left: the client gets a 500, not a
    200 that is cut off."""

    async def started_then_broken(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("boom")

    failing_gateway(started_then_broken)
    status, _, body = answer_then_close(gateway_url, GET_MODELS)
    assert status == b"HTTP/1.1 500 Internal Server Error"
    assert body == b"Internal Server Error"
