"""uvicorn's httptools protocol with a shorter road for /v1.

Serve with `uvicorn nexeon.asgi:application --http apigateway.server:GatewayHttpProtocol`.

Everything but /v1 (the dashboard, admin, webhooks, WebSockets) takes uvicorn's own path
unchanged. A /v1 request is handed straight to the gateway's ASGI app, past the project's
router and uvicorn's proxy-headers middleware (the gateway reads neither the client's
address nor the scheme), by an exchange object that does per request only what the
gateway needs: the response head checked in one pass over the whole of it rather than two
regexes per header, a response's head written with its first body bytes (a whole answer
in one write and, through the scope extension `nexeon.respond`, without ASGI messages), a
body that arrived with its head handed over without receive() and its idle timer, a client
that leaves mid-stream reported by a callback (`nexeon.on_disconnect`) rather than to a
task waiting on receive(), no access-log branch. After a call waits on its provider, each
distinct piece of code a response runs through costs its cache misses again, so less code
here is less added latency (docs/performance.md).

What a client sees is uvicorn's behaviour: the same status lines, `date` and `server`
headers, keep-alive and pipelining, `Expect: 100-continue`, chunked streams, and a 500
(or a closed connection, once a response has started) when the app fails.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from apigateway.url_mistakes import lacks_v1

logger = logging.getLogger("uvicorn.error")

# Control bytes that have no place in a response head (CR and LF are counted instead).
CONTROL_BYTES = re.compile(b"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
INTERNAL_ERROR = (
    b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 21\r\nconnection: close\r\n\r\nInternal Server Error"
)


def _nothing() -> None:
    pass


def is_gateway_path(path: str) -> bool:
    """The paths nexeon.asgi routes to the gateway: /v1, and API paths written without it
    (which it answers with a JSON 404 saying so: url_mistakes)."""
    return path.startswith("/v1/") or path == "/v1" or lacks_v1(path)


def response_head(
    status: int,
    headers: Iterable[tuple[bytes, bytes]],
    default_headers: list[tuple[bytes, bytes]],
    keep_alive: bool,
) -> tuple[bytes, int | None, bool]:
    """(the status line and headers, the declared content-length or None for a chunked
    body, whether the connection stays open): uvicorn's rules for a response head. Header
    names are the gateway's own lower-case constants; values may come from elsewhere (a
    provider's Retry-After), so the whole head is checked in one pass: a CR or LF anywhere
    but at a line's end would let a value start a header of its own."""
    lines = [STATUS_LINE[status]]
    length: int | None = None
    chunked = closing = False
    for name, value in default_headers:
        lines.append(b"%b: %b\r\n" % (name, value))
    for name, value in headers:
        if name == b"content-length":
            if length is None and not chunked:
                length = int(value)
        elif name == b"transfer-encoding":
            if value.lower() == b"chunked" and length is None:
                chunked = True
        elif name == b"connection" and b"close" in value.lower():
            keep_alive = False
            closing = True
        lines.append(b"%b: %b\r\n" % (name, value))
    if not keep_alive and not closing:
        lines.append(b"connection: close\r\n")
    if length is None and not chunked and status not in (204, 304):
        lines.append(b"transfer-encoding: chunked\r\n")
    lines.append(b"\r\n")
    head = b"".join(lines)
    if head.count(b"\n") != len(lines) or head.count(b"\r") != len(lines):
        raise RuntimeError("Invalid HTTP header: a CR or LF inside a name or value.")
    if CONTROL_BYTES.search(head):
        raise RuntimeError("Invalid HTTP header: a control byte inside a name or value.")
    return head, length, keep_alive


class GatewayExchange:
    """One /v1 request and its response on a connection: what uvicorn's RequestResponseCycle
    is to the protocol (the same attributes), with a leaner send and receive."""

    __slots__ = (
        "body",
        "default_headers",
        "disconnected",
        "expect_100_continue",
        "flow",
        "gone",
        "head",
        "keep_alive",
        "length",
        "message_event",
        "more_body",
        "on_response",
        "response_complete",
        "response_started",
        "scope",
        "transport",
    )

    def __init__(
        self,
        scope: dict[str, Any],
        transport: asyncio.Transport,
        flow: FlowControl,
        default_headers: list[tuple[bytes, bytes]],
        *,
        keep_alive: bool,
        expect_100_continue: bool,
        on_response: Callable[[], None],
    ) -> None:
        self.scope = scope
        self.transport = transport
        self.flow = flow
        self.default_headers = default_headers
        self.keep_alive = keep_alive
        self.expect_100_continue = expect_100_continue
        self.on_response = on_response
        self.message_event = asyncio.Event()
        self.disconnected = False
        self.body = bytearray()
        self.more_body = True
        self.response_started = False
        self.response_complete = False
        self.length: int | None = None  # bytes of body still due; None: chunked
        self.head = b""  # the response's head, held back to leave with its first body bytes
        self.gone: Callable[[], None] | None = None  # see on_disconnect

    def body_if_complete(self) -> bytes | None:
        """The whole request body if it has all arrived (it usually comes with the head),
        for the gateway to take without a receive() and its idle time-out."""
        if self.more_body or self.disconnected or self.response_complete:
            return None
        body, self.body = bytes(self.body), bytearray()
        self.message_event.clear()  # the next receive() waits for the client to leave
        return body

    def on_disconnect(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Scope extension `nexeon.on_disconnect`: `callback` is called if the client leaves
        before the response is complete (no task waits on receive() for it). Returns the
        function that stops watching."""
        if self.disconnected:
            callback()
        else:
            self.gone = callback
        return self._stop_watching

    def _stop_watching(self) -> None:
        self.gone = None

    def client_left(self) -> None:
        """The protocol saw the connection close before the response was complete."""
        gone, self.gone = self.gone, None
        if gone is not None:
            gone()

    async def run_asgi(self, app: Callable[..., Awaitable[None]]) -> None:
        try:
            await app(self.scope, self.receive, self.send)
        except BaseException as exc:
            logger.error("Exception in ASGI application\n", exc_info=exc)
            self._abandon()
        else:
            if not self.response_complete and not self.disconnected:
                logger.error("ASGI callable returned without completing its response.")
                self._abandon()
        finally:
            self.on_response = _nothing

    def _abandon(self) -> None:
        if self.head:  # held back: nothing of this response has been written yet
            self.response_started = False
        if not self.response_started and not self.disconnected:
            self.response_started = self.response_complete = True
            self.transport.write(INTERNAL_ERROR)
        self.transport.close()

    async def receive(self) -> dict[str, Any]:
        if self.expect_100_continue and not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.expect_100_continue = False
        if not self.disconnected and not self.response_complete:
            self.flow.resume_reading()
            await self.message_event.wait()  # set by the parser, a disconnect or the answer
            self.message_event.clear()
        if self.disconnected or self.response_complete:
            return {"type": "http.disconnect"}
        body, self.body = bytes(self.body), bytearray()
        return {"type": "http.request", "body": body, "more_body": self.more_body}

    def respond(self, status: int, headers: Iterable[tuple[bytes, bytes]], body: bytes) -> None:
        """A whole answer at once, without ASGI messages (scope extension `nexeon.respond`):
        `headers` must declare its content-length. Nothing is written to a client that left."""
        if self.response_started:
            raise RuntimeError("A response was already started.")
        self.response_started = True
        if self.disconnected:
            return
        head, length, self.keep_alive = response_head(
            status, headers, self.default_headers, self.keep_alive
        )
        if length != len(body):
            self.response_started = False  # nothing written: run_asgi may still answer 500
            raise RuntimeError("A whole answer must declare its exact content-length.")
        self.expect_100_continue = False
        self.length = 0
        self.transport.write(head + body)
        self._complete()

    async def send(self, message: dict[str, Any]) -> None:
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return
        if not self.response_started:
            if message["type"] != "http.response.start":
                raise RuntimeError(f"Expected 'http.response.start', got '{message['type']}'.")
            self.response_started = True
            self.expect_100_continue = False
            # Held back until the first body message, which the gateway sends right after (a
            # stream's comes with the provider's first event): one write for both.
            self.head, self.length, self.keep_alive = response_head(
                message["status"], message.get("headers", ()), self.default_headers, self.keep_alive
            )
            return
        if self.response_complete or message["type"] != "http.response.body":
            raise RuntimeError(f"Unexpected ASGI message '{message['type']}'.")
        body = message.get("body", b"")
        more = message.get("more_body", False)
        if self.length is None:  # chunked
            if more:
                data = b"%x\r\n%b\r\n" % (len(body), body) if body else b""
            else:
                data = b"%x\r\n%b\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
        else:
            self.length -= len(body)
            if self.length < 0:
                raise RuntimeError("Response content longer than Content-Length")
            data = body
        if self.head:
            data, self.head = self.head + data, b""
        if data:
            self.transport.write(data)
        if not more:
            if self.length:
                raise RuntimeError("Response content shorter than Content-Length")
            self._complete()

    def _complete(self) -> None:
        """The response's last byte is written: wake a receive() waiting for the client to
        leave, close unless kept alive, and let the protocol start the next request."""
        self.response_complete = True
        self.message_event.set()
        if not self.keep_alive:
            self.transport.close()
        self.on_response()


class GatewayHttpProtocol(HttpToolsProtocol):
    """uvicorn's HttpToolsProtocol; /v1 requests go to the gateway through a GatewayExchange."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from apigateway.app import application  # the app is loaded (and Django set up) by now

        self.gateway = application

    def connection_lost(self, exc: Exception | None) -> None:
        cycle = self.cycle
        super().connection_lost(exc)
        # (self.cycle is typed as uvicorn's RequestResponseCycle; GatewayExchange stands in)
        if type(cycle) is GatewayExchange and cycle.disconnected:  # type: ignore[comparison-overlap]
            cycle.client_left()

    def on_headers_complete(self) -> None:
        parser = self.parser
        method = parser.get_method()
        if (
            not self.url.startswith(b"/v1")
            or method == b"HEAD"
            or parser.should_upgrade()
            or self.limit_concurrency is not None
            or self.root_path  # (nexeon.asgi routes on the path with its root)
        ):
            super().on_headers_complete()
            return
        path, query = self.url.partition(b"?")[::2]
        if b"%" in path or b"#" in path or not is_gateway_path(path.decode("ascii", "replace")):
            super().on_headers_complete()  # uvicorn's own path decodes it and routes it
            return
        http_version = parser.get_http_version()
        scope = self.scope
        scope["method"] = method.decode("ascii")
        if http_version != "1.1":
            scope["http_version"] = http_version
        scope["path"] = path.decode("ascii")
        scope["raw_path"] = path
        scope["query_string"] = query
        existing = self.cycle
        # (GatewayExchange stands in for uvicorn's RequestResponseCycle: the same attributes)
        self.cycle = exchange = GatewayExchange(  # type: ignore[assignment]
            scope,  # type: ignore[arg-type]
            self.transport,
            self.flow,
            self.server_state.default_headers,
            keep_alive=http_version != "1.0" and parser.should_keep_alive(),
            expect_100_continue=self.expect_100_continue,
            on_response=self.on_response_complete,
        )
        scope["extensions"] = {
            # (uvicorn's scope type knows only the ASGI spec's extensions)
            "nexeon.body_if_complete": exchange.body_if_complete,  # type: ignore[dict-item]
            "nexeon.respond": exchange.respond,  # type: ignore[dict-item]
            "nexeon.on_disconnect": exchange.on_disconnect,  # type: ignore[dict-item]
        }
        if existing is None or existing.response_complete:
            self._start_asgi_task(self.cycle, self.gateway)  # type: ignore[arg-type]
        else:  # pipelined: uvicorn's on_response_complete starts it in turn
            self.flow.pause_reading()
            self.pipeline.appendleft((self.cycle, self.gateway))  # type: ignore[arg-type]
