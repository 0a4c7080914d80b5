"""A small HTTP/1.1 client for calls to providers: keep-alive pools per host and event
loop, the httptools parser, and deadlines for connecting, for the first byte and between
bytes.

Why not aiohttp or httpx: every call waits on its provider, and the code that runs after
the wait runs cold, so the gateway's added latency is mostly the code a response passes
through (docs/performance.md). After a 50 ms wait, aiohttp's response path takes about
0.5 ms longer at the median than the same exchange over a bare asyncio Protocol (0.06 ms
when hot); httpx 0.28 adds +6.4 ms against this client's +0.9 (docs/operations.md).
This client does only what the gateway needs: one request per connection at a time,
Content-Length request bodies, any response framing httptools understands (length,
chunked, until close), gzip/deflate answers decoded, TLS (the system's trust store, or a
provider's own context: apigateway/upstream_tls.py), IPv6 literals.

Egress as operators run it: HTTPS_PROXY / HTTP_PROXY / ALL_PROXY and NO_PROXY (either case,
read when a client is made, urllib.request's rules), https through a CONNECT tunnel, http
as absolute URIs to the proxy, the proxy URL's user and password sent as Basic
Proxy-Authorization. Limits: at most `max_connections_per_host` connections per host and
TLS setting (callers beyond it queue for one within their connect deadline, then
UpstreamBusy), and at most `max_response_bytes` of an answer held at once: a whole answer
read with read(), or what arrived between two next_chunk() calls of a stream, counted
both as received and as decoded (a gzip bomb is refused without being inflated).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import ssl
import time
import urllib.request
import zlib
from collections import deque
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import httptools

IDLE_SECONDS = 30.0  # an idle pooled connection older than this is not reused
MAX_IDLE_PER_HOST = 256
MAX_CONNECTIONS_PER_HOST = 1000
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
_TLS = ssl.create_default_context()
_TIMED_OUT = object()  # a queued caller's turn that never came


class UpstreamConnectError(ConnectionError):
    """The connection could not be opened (refused, unreachable, proxy refusal)."""


class UpstreamTLSError(UpstreamConnectError):
    """The TLS handshake failed: the provider's certificate was not trusted, or ours not."""


class UpstreamBusy(ConnectionError):
    """Every connection the cap allows to this host is busy, for the whole connect deadline."""


class UpstreamBroken(ConnectionError):
    """The connection broke, or the answer was not valid HTTP."""


class UpstreamTooLarge(UpstreamBroken):
    """The answer is larger than the client's max_response_bytes (received or decoded)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the answer is larger than {limit} bytes")
        self.limit = limit


class _Connection(asyncio.Protocol):
    def __init__(self, pool: _Pool) -> None:
        self.loop = asyncio.get_running_loop()  # (made by create_connection: once, not per call)
        self.pool = pool
        # Set by connection_made, which runs before create_connection hands this object out.
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.closed = False
        self.idle_since = 0.0
        self.counted = False  # holds one of its pool's connection slots
        self.limit = pool.max_response_bytes
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.encoding = b""  # the answer's content-encoding
        self.chunks: deque[bytes] = deque()
        # The parser's body callback is the deque's own append (a stream's events come as
        # one chunk each, often many in one read); data_received wakes the reader. Set
        # before the parser is made: it looks its callbacks up once.
        self.on_body = self.chunks.append
        self.parser = httptools.HttpResponseParser(self)
        self.complete = False
        self.keep_alive = False
        self.received = False
        self.error: Exception | None = None
        self.waiter: asyncio.Future[Any] | None = None
        self.headers_done = False
        self.buffered = 0  # bytes received since the reader last took the body

    # --- asyncio.Protocol ---
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received = True
        self.buffered += len(data)
        if self.buffered > self.limit:
            self._fail(UpstreamTooLarge(self.limit))
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamBroken("unexpected protocol upgrade"))
            return
        except httptools.HttpParserError:
            self._fail(UpstreamBroken("invalid HTTP from the provider"))
            return
        if self.chunks and self.waiter is not None:  # (usually woken already by the head)
            self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.counted:
            self.counted = False
            self.pool.slot_freed()
        if not self.complete and self.headers_done and self._framed_by_close():
            self.complete = True  # no length, not chunked: the body ends with the connection
            self._wake()
        elif not self.complete:
            self._fail(UpstreamBroken("the provider closed the connection"))

    def _framed_by_close(self) -> bool:
        names = {name for name, _ in self.headers}
        chunked = any(
            name == b"transfer-encoding" and b"chunked" in value.lower()
            for name, value in self.headers
        )
        return b"content-length" not in names and not chunked

    # --- httptools callbacks ---
    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-encoding":
            self.encoding = value.strip().lower()
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.headers_done = True
        self._wake()

    def on_message_complete(self) -> None:
        # Asked now: once this callback returns, the parser has moved on and says False.
        self.keep_alive = self.parser.should_keep_alive()
        self.complete = True
        if self.waiter is not None:
            self._wake()

    # --- the exchange ---
    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None  # woken once: later news in the same read costs no call
            if not waiter.done():
                waiter.set_result(None)

    def _fail(self, error: Exception) -> None:
        if self.error is None:  # the first cause is the one the reader hears of
            self.error = error
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
        self._wake()

    async def wait(self, seconds: float) -> None:
        """Until the parser has news; TimeoutError if none comes within `seconds`."""
        if self.error is not None:
            raise self.error
        loop = self.loop
        waiter = self.waiter = loop.create_future()
        expired = False

        def expire() -> None:
            nonlocal expired
            if not waiter.done():
                expired = True
                waiter.set_result(None)

        timer = loop.call_later(seconds, expire)
        try:
            await waiter
        finally:
            timer.cancel()
            self.waiter = None
        if self.error is not None:
            raise self.error
        if expired:
            self._fail(UpstreamBroken("timed out"))
            raise TimeoutError

    def release(self) -> None:
        """After a whole answer: back to the pool if the server keeps it alive."""
        if self.complete and self.keep_alive and not self.closed:
            self._reset()
            self.idle_since = time.monotonic()
            self.pool.put(self)
        else:
            self.abort()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class _Proxy:
    """Where a pool's connections go instead of the provider's host."""

    __slots__ = ("authorization", "host", "port")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme.lower() != "http" or not parts.hostname:
            raise UpstreamConnectError(f"unsupported proxy {parts.scheme}://; use http://")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.authorization = ""
        if parts.username is not None:
            userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self.authorization = "Basic " + base64.b64encode(userinfo.encode()).decode()


def proxy_for(scheme: str, host: str, port: int, proxies: Mapping[str, str]) -> _Proxy | None:
    """The proxy a request to scheme://host:port goes through, per the environment's
    variables (urllib.request's reading of them, NO_PROXY included), or None: directly.
    NO_PROXY may name an IPv6 host bare (::1) or in brackets."""
    url = proxies.get(scheme) or proxies.get("all")
    if not url:
        return None
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]  # (no stub)
    if bypass(authority(host, port), proxies) or (":" in host and bypass(host, proxies)):
        return None
    return _Proxy(url)


def authority(host: str, port: int, default_port: int | None = None) -> str:
    """host[:port] as a Host header or a CONNECT target names it (IPv6 in brackets)."""
    name = f"[{host}]" if ":" in host else host
    return name if port == default_port else f"{name}:{port}"


class _Tunnel(asyncio.Protocol):
    """A proxy's answer to CONNECT: the bytes up to its head's end."""

    def __init__(self) -> None:
        self.answer = bytearray()
        self.done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.answer += data
        if b"\r\n\r\n" in self.answer and not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(UpstreamConnectError("the proxy closed the connection"))


class _Pool:
    """The connections to one host (and TLS context): idle ones for reuse, and a count of
    all that are open against the cap, with the callers queued for one."""

    def __init__(
        self,
        scheme: str,
        host: str,
        port: int,
        tls: ssl.SSLContext | None,
        proxy: _Proxy | None,
        limits: tuple[int, int],
    ) -> None:
        self.scheme, self.host, self.port, self.proxy = scheme, host, port, proxy
        self.tls = (tls or _TLS) if scheme == "https" else None
        self.max_connections, self.max_response_bytes = limits
        self.authority = authority(host, port, 443 if scheme == "https" else 80)
        self.idle: list[_Connection] = []
        self.opened = 0  # connections open or being opened (idle ones included)
        self.waiters: deque[asyncio.Future[Any]] = deque()

    def get(self) -> _Connection | None:
        now = time.monotonic()
        while self.idle:
            connection = self.idle.pop()
            if not connection.closed and now - connection.idle_since < IDLE_SECONDS:
                return connection
            connection.abort()
        return None

    def put(self, connection: _Connection) -> None:
        while self.waiters:  # a caller queued for a connection takes this one
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        if len(self.idle) < MAX_IDLE_PER_HOST:
            self.idle.append(connection)
        else:
            connection.abort()

    def slot_freed(self) -> None:
        """A connection closed: the first queued caller may open one instead."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # (its slot: `opened` stays as it is)
                return
        self.opened -= 1

    async def open(self, seconds: float) -> tuple[_Connection, bool]:
        """A new connection, or, at the cap, the first one another caller gives back (then
        True: it was used before); all within `seconds`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        if self.opened >= self.max_connections:
            handed = await self._queue(loop, seconds)
            if handed is not None:
                return handed, True
        else:
            self.opened += 1
        try:
            connection = await asyncio.wait_for(self._dial(loop), max(deadline - loop.time(), 0))
        except BaseException as exc:
            self.slot_freed()
            # (for the operator's log: a proxy that fails is not the provider)
            via = f" via the proxy {self.proxy.host}:{self.proxy.port}" if self.proxy else ""
            if isinstance(exc, TimeoutError):
                # Nothing was sent: as safe to retry elsewhere as a refused connection.
                raise UpstreamConnectError(f"connect timed out{via}") from None
            if isinstance(exc, ssl.SSLError):
                why = getattr(exc, "verify_message", None) or getattr(exc, "reason", None)
                raise UpstreamTLSError(f"{type(exc).__name__} ({why}){via}") from None
            if isinstance(exc, OSError) and not isinstance(exc, UpstreamConnectError):
                raise UpstreamConnectError(f"{type(exc).__name__}{via}") from None
            raise
        connection.counted = True
        if connection.closed:  # lost before it was counted: its slot is free already
            connection.counted = False
            self.slot_freed()
        return connection, False

    async def _queue(self, loop: asyncio.AbstractEventLoop, seconds: float) -> _Connection | None:
        """Wait for a connection given back (returned) or a slot (None)."""
        waiter = loop.create_future()
        self.waiters.append(waiter)
        timer = loop.call_later(seconds, lambda: waiter.done() or waiter.set_result(_TIMED_OUT))  # type: ignore[func-returns-value]
        try:
            handed: _Connection | None = await waiter
        except BaseException:
            # Cancelled: what was handed to this caller meanwhile goes to the next one.
            if waiter.done() and not waiter.cancelled():
                if isinstance(waiter.result(), _Connection):
                    self.put(waiter.result())
                elif waiter.result() is None:
                    self.slot_freed()
            raise
        finally:
            timer.cancel()
        if handed is _TIMED_OUT:
            raise UpstreamBusy(f"no free connection to {self.authority} within {seconds:g} s")
        return handed

    async def _dial(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        proxy = self.proxy
        if proxy is None:
            _, connection = await loop.create_connection(
                lambda: _Connection(self),
                self.host,
                self.port,
                ssl=self.tls,
                server_hostname=self.host if self.tls else None,
            )
            return connection
        if self.tls is None:  # http through the proxy: requests name the whole URL
            _, connection = await loop.create_connection(
                lambda: _Connection(self), proxy.host, proxy.port
            )
            return connection
        transport, tunnel = await loop.create_connection(_Tunnel, proxy.host, proxy.port)
        try:
            lines = [f"CONNECT {self.authority} HTTP/1.1", f"host: {self.authority}"]
            if proxy.authorization:
                lines.append(f"proxy-authorization: {proxy.authorization}")
            transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            await tunnel.done
            status_line = bytes(tunnel.answer).split(b"\r\n", 1)[0].decode("latin-1")
            parts = status_line.split(" ", 2)
            if len(parts) < 2 or not parts[1].startswith("2"):
                raise UpstreamConnectError(f"the proxy answered CONNECT with {status_line!r}")
            connection = _Connection(self)
            secure = await loop.start_tls(
                transport, connection, self.tls, server_hostname=self.host
            )
        except BaseException:
            transport.abort()
            raise
        connection.connection_made(secure)  # type: ignore[arg-type]  # (start_tls gives one)
        return connection

    def close(self) -> None:
        for connection in self.idle:
            connection.abort()
        self.idle.clear()


class Response:
    """Status and headers are in; the body is read with read() or chunks(). close() when
    done: a connection whose answer was not read to the end is dropped, not reused."""

    def __init__(self, connection: _Connection, read_timeout: float) -> None:
        self._connection = connection
        self._timeout = read_timeout
        self.status = connection.status
        self._headers = connection.headers  # (the connection starts a new list when reused)
        encoding = connection.encoding
        self._decoder = (
            zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == b"gzip" else zlib.MAX_WBITS)
            if encoding in (b"gzip", b"deflate")
            else None
        )
        self._done = False

    @functools.cached_property
    def headers(self) -> dict[str, str]:
        """Lower-case names (made when asked: a successful call never asks)."""
        return {name.decode("latin-1"): value.decode("latin-1") for name, value in self._headers}

    def _decode(self, data: bytes, final: bool) -> bytes:
        """Inflated, at most the size limit: past it, UpstreamTooLarge before any more is
        made."""
        decoder: zlib._Decompress = self._decoder  # type: ignore[assignment]  # (only when set)
        limit = self._connection.limit
        try:
            out = decoder.decompress(data, limit + 1)
            if final and not decoder.unconsumed_tail:
                out += decoder.flush()
        except zlib.error:
            self._connection.abort()
            raise UpstreamBroken("the provider's compressed answer is corrupt") from None
        if len(out) > limit or decoder.unconsumed_tail:
            self._connection.abort()
            raise UpstreamTooLarge(limit)
        return out

    async def next_chunk(self) -> bytes | None:
        """The body that has arrived since the last call (waiting until some has), or None
        once it has all been read. Everything that has arrived comes at once: a stream's
        events that came in one read go to the caller in one write, as they arrived.

        (Not an async generator: a stream's reader stops at its last event, and a generator
        left unfinished is closed later by a task that the loop schedules through
        call_soon_threadsafe, a write to its wake-up fd, on every stream.)"""
        connection = self._connection
        while True:
            if connection.chunks:
                chunk = b"".join(connection.chunks)
                connection.chunks.clear()
                connection.buffered = 0
                if self._decoder is not None:
                    chunk = self._decode(chunk, final=False)
                if chunk:
                    return chunk
            elif connection.complete:
                self._done = True
                if self._decoder is not None:
                    tail = self._decode(b"", final=True)
                    self._decoder = None
                    if tail:
                        return tail
                return None
            else:
                await connection.wait(self._timeout)

    async def read(self) -> bytes:
        """The whole body, at once."""
        connection = self._connection
        parts: list[bytes] = []
        while True:
            parts += connection.chunks
            connection.chunks.clear()
            if connection.complete:
                break
            await connection.wait(self._timeout)
        self._done = True
        body = b"".join(parts)
        if self._decoder:
            body = self._decode(body, final=True)
        return body

    def close(self) -> None:
        # A reader that stopped at the stream's last event usually has the whole answer
        # already (the terminating chunk came in the same packet): keep that connection.
        if self._done or self._connection.complete:
            self._connection.release()
        else:
            self._connection.abort()


MAX_PARSED_URLS = 1024


class Client:
    """One per event loop. `request` returns once the status line and headers are in.

    `proxies` as urllib.request.getproxies_environment() gives them (read from the
    environment when not given)."""

    def __init__(
        self,
        *,
        max_connections_per_host: int = MAX_CONNECTIONS_PER_HOST,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        proxies: Mapping[str, str] | None = None,
    ) -> None:
        self._limits = (max_connections_per_host, max_response_bytes)
        self._proxies = urllib.request.getproxies_environment() if proxies is None else proxies
        self._pools: dict[tuple[Any, ...], _Pool] = {}
        # Deployment URLs repeat call after call: each is parsed once (a bounded cache).
        self._targets: dict[tuple[str, ssl.SSLContext | None], tuple[_Pool, str, str]] = {}

    def _pool(self, url: str, tls: ssl.SSLContext | None) -> tuple[_Pool, str, str]:
        """The pool, the request target and the head's fixed lines for `url`."""
        found = self._targets.get((url, tls))
        if found is not None:
            return found
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise UpstreamConnectError(f"unsupported URL scheme {scheme!r}")
        port = parts.port or (443 if scheme == "https" else 80)
        host = parts.hostname
        key = (scheme, host, port, tls)
        pool = self._pools.get(key)
        if pool is None:
            proxy = proxy_for(scheme, host, port, self._proxies)
            pool = self._pools[key] = _Pool(scheme, host, port, tls, proxy, self._limits)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        fixed = f"host: {pool.authority}"
        if pool.proxy is not None and pool.tls is None:
            target = f"http://{pool.authority}{target}"  # the absolute form a proxy takes
            if pool.proxy.authorization:
                fixed += f"\r\nproxy-authorization: {pool.proxy.authorization}"
        if len(self._targets) >= MAX_PARSED_URLS:
            self._targets.clear()
        found = self._targets[(url, tls)] = (pool, target, fixed)
        return found

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        body: bytes | None,
        connect_timeout: float,
        read_timeout: float,
        tls: ssl.SSLContext | None = None,
    ) -> Response:
        """`tls`: the provider's own context (upstream_tls); None: the system's."""
        pool, target, fixed = self._pool(url, tls)
        lines = [f"{method} {target} HTTP/1.1", fixed]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"content-length: {len(body or b'')}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        while True:
            connection = pool.get()
            reused = connection is not None
            if connection is None:
                connection, reused = await pool.open(connect_timeout)
            connection.transport.write(head + (body or b""))
            try:
                while not connection.headers_done:
                    await connection.wait(read_timeout)
            except UpstreamBroken:
                # A pooled connection the server had closed meanwhile: it never saw this
                # request, so sending it again on a fresh connection is safe.
                if reused and not connection.received:
                    continue
                raise
            except BaseException:
                connection.abort()
                raise
            return Response(connection, read_timeout)

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        self._targets.clear()
