"""Fake provider servers for tests: real HTTP on loopback, run by uvicorn in a thread.

A fake subclasses FakeProvider and implements `handle`. Tests read `requests` (what the
gateway sent upstream) and steer the next answers with `fail_next`, `latency`,
`chunk_delay`, `break_after`, `script` and `hold`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn

from tests.support import free_port

Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    receive: Callable[[], Awaitable[dict[str, Any]]] | None = field(default=None, repr=False)

    def json(self) -> Any:
        return orjson.loads(self.body)


class BrokenStream(Exception):
    """Raised by a fake to cut a stream off mid-way, as a crashing provider would."""


@dataclass
class Failure:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class FakeProvider:
    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.failures: deque[Failure] = deque()
        self.latency = 0.0  # seconds before the answer (before the first SSE byte)
        self.chunk_delay = 0.0  # seconds between SSE events
        self.break_after: int | None = None  # drop the connection after this many SSE events
        self.disconnected = 0  # streams the client abandoned mid-way
        # A stream's pieces in the provider's own shape, sent instead of the echo answer
        # (each fake says what a piece is); a bytes piece is sent as it is (an error event).
        self.script: list[Any] | None = None
        # End a stream without its closing events (finish reason, final usage) and keep it
        # open until the client leaves: a stream the client cuts at a known place.
        self.hold = False
        # Counts the provider bills instead of the echo's, e.g. {"prompt": 150_000} (a long
        # PDF behind a URL) or {"completion": "max"} (an answer as long as the cap allows).
        self.bills: dict[str, int | str] = {}
        self.base_url = ""

    def fail_next(self, status: int, body: Any, *, times: int = 1, headers=None) -> None:
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        for _ in range(times):
            self.failures.append(Failure(status, raw, headers or {}))

    def reset(self) -> None:
        self.requests.clear()
        self.failures.clear()
        self.latency = self.chunk_delay = 0.0
        self.break_after = None
        self.disconnected = 0
        self.script = None
        self.hold = False
        self.bills = {}

    def billed(self, kind: str, counted: int, cap: int | None) -> int:
        """What the provider bills of `kind` ("prompt" or "completion"): `bills`' figure
        ("max": the cap the request sent), else what the fake counted."""
        figure = self.bills.get(kind)
        if figure is None:
            return counted
        return int(cap or 0) if figure == "max" else int(figure)

    # --- ASGI ---
    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = RecordedRequest(
            method=scope["method"],
            path=scope["path"],
            query=scope["query_string"].decode(),
            headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
            body=body,
            receive=receive,
        )
        self.requests.append(request)
        # The failure is bound to the request when it arrives: a request still sleeping
        # out `latency` from an earlier test (whose gateway was killed meanwhile) must not
        # take a failure the next test queued.
        failure = self.failures.popleft() if self.failures else None
        if self.latency:
            await asyncio.sleep(self.latency)
        if failure is not None:
            await self.respond(send, failure.status, failure.body, failure.headers)
            return
        await self.handle(request, send)

    async def handle(self, request: RecordedRequest, send: Send) -> None:
        raise NotImplementedError

    # --- helpers for subclasses ---
    async def respond(self, send: Send, status: int, body: bytes, headers=None) -> None:
        header_list = [(b"content-type", b"application/json")]
        header_list += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
        await send({"type": "http.response.start", "status": status, "headers": header_list})
        await send({"type": "http.response.body", "body": body})

    async def respond_json(self, send: Send, payload: Any, status: int = 200) -> None:
        await self.respond(send, status, orjson.dumps(payload))

    async def stream(self, send: Send, events: list[bytes], request: RecordedRequest) -> None:
        """Send already-encoded SSE events one by one, `chunk_delay` apart, and stop (counting
        it in `disconnected`) as soon as the client goes away; with `hold`, wait for that after
        the last event (a while at most, so that a test that fails does not hang)."""
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        assert request.receive is not None
        gone = asyncio.ensure_future(request.receive())  # resolves on http.disconnect
        try:
            for index, event in enumerate(events):
                if self.chunk_delay and index:
                    await asyncio.wait([gone], timeout=self.chunk_delay)
                if gone.done():
                    self.disconnected += 1
                    return
                if index == self.break_after:
                    # uvicorn aborts a response its app fails in: no final chunk is sent
                    raise BrokenStream(f"the fake broke off after {index} events")
                await send({"type": "http.response.body", "body": event, "more_body": True})
            if self.hold:
                await asyncio.wait([gone], timeout=30)
                self.disconnected += gone.done()
                return
            await send({"type": "http.response.body", "body": b""})
        finally:
            gone.cancel()


@contextmanager
def serving(app: FakeProvider, **tls: Any) -> Iterator[str]:
    """Run the fake on a free loopback port; yields its base URL (http://127.0.0.1:PORT).
    With uvicorn's TLS options (tests/fakes/tls.py) it serves https://localhost:PORT."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        loop="asyncio",
        **tls,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fake provider did not start")
        time.sleep(0.01)
    app.base_url = f"https://localhost:{port}" if tls else f"http://127.0.0.1:{port}"
    try:
        yield app.base_url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
