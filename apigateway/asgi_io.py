"""Small ASGI helpers: read a bounded body in bounded time, send JSON, watch for a client
that leaves."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from apigateway.errors import GatewayError
from nexeon.loops import running_loop, spawn

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]
Scope = dict[str, Any]


# The longest a request body may pause between two pieces (nginx's client_body_timeout).
BODY_IDLE_SECONDS = 60.0


class ClientGone(Exception):
    """The client disconnected; nothing more can be sent."""


def header(scope: dict[str, Any], name: bytes) -> str | None:
    value: bytes
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def client_address(scope: dict[str, Any], trusted: list[str]) -> str:
    """The caller's address: the peer's, or, when the peer is a trusted proxy (`trusted`,
    FORWARDED_ALLOW_IPS; "*" for any), the last address X-Forwarded-For names that is not
    itself a trusted proxy."""
    peer = (scope.get("client") or ("", 0))[0] or ""
    if not ("*" in trusted or peer in trusted):
        return peer
    forwarded = header(scope, b"x-forwarded-for")
    if not forwarded:
        return peer
    for hop in reversed([part.strip() for part in forwarded.split(",")]):
        if hop and hop not in trusted:
            return hop
    return peer


def too_large(limit: int) -> GatewayError:
    return GatewayError(
        413,
        f"The request body is larger than the limit of {limit} bytes.",
        code="request_too_large",
    )


def too_slow() -> GatewayError:
    return GatewayError(
        408,
        f"The request body stopped arriving: nothing came for {BODY_IDLE_SECONDS:g} seconds.",
        code="request_timeout",
    )


async def read_body(scope: dict[str, Any], receive: Receive, limit: int) -> bytes:
    """The whole body, refusing (413) as soon as it is known to exceed `limit`, and (408) a
    body that stops arriving before its end, which uvicorn would wait for forever."""
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    # apigateway.server hands over a body that has already arrived whole (the usual case).
    ready: Callable[[], bytes | None] | None = scope.get("extensions", {}).get(
        "nexeon.body_if_complete"
    )
    if ready is not None and (body := ready()) is not None:
        if len(body) > limit:
            raise too_large(limit)
        return body
    chunks: list[bytes] = []
    size = 0
    loop = running_loop()
    try:
        async with asyncio.timeout(BODY_IDLE_SECONDS) as idle:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientGone
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise too_large(limit)
                chunks.append(chunk)
                if not message.get("more_body"):
                    return b"".join(chunks)
                idle.reschedule(loop.time() + BODY_IDLE_SECONDS)
    except TimeoutError:
        raise too_slow() from None


def json_headers(body: bytes, headers: Sequence[tuple[bytes, bytes]] = ()) -> Headers:
    """A JSON answer's headers: its type and length, then `headers`."""
    return [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(body)),
        *headers,
    ]


async def send_json(
    send: Send, status: int, body: bytes, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": json_headers(body, headers)}
    )
    await send({"type": "http.response.body", "body": body})


async def wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def on_disconnect(
    scope: dict[str, Any], receive: Receive, callback: Callable[[], None]
) -> Callable[[], None]:
    """Have `callback` called if the client leaves before the response is complete; returns
    the function that stops watching. The server's own hook (scope extension
    `nexeon.on_disconnect`, apigateway.server) costs nothing until then; on another server
    a task waits on receive()."""
    watch: Callable[[Callable[[], None]], Callable[[], None]] | None = scope.get(
        "extensions", {}
    ).get("nexeon.on_disconnect")
    if watch is not None:
        return watch(callback)
    return spawn(_when_gone(receive, callback)).cancel  # type: ignore[return-value]  # (bool unused)


async def _when_gone(receive: Receive, callback: Callable[[], None]) -> None:
    await wait_for_disconnect(receive)
    callback()
