"""A small HTTP/1.1 client for calls to providers: keep-alive pools per host and event
loop, the httptools parser, and deadlines for connecting, for the first byte and between
bytes.

Why not aiohttp: after 50 ms of waiting on a provider, aiohttp's response path ran about
0.5 ms slower at the median than the same exchange over a bare asyncio Protocol on this
VM (0.06 ms slower when hot) — its layers run cold, and the gateway's added latency at a
50 ms upstream is mostly such cold work (README, Performance). This client does only what
the gateway needs: one request per connection at a time, Content-Length request bodies,
any response framing httptools understands (length, chunked, until close), gzip/deflate
answers decoded, TLS with the system's trust store.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
import zlib
from collections import deque
from urllib.parse import urlsplit

import httptools

IDLE_SECONDS = 30.0  # an idle pooled connection older than this is not reused
MAX_IDLE_PER_HOST = 256
_TLS = ssl.create_default_context()


class UpstreamConnectError(ConnectionError):
    """The connection could not be opened (refused, unreachable, TLS failure)."""


class UpstreamBroken(ConnectionError):
    """The connection broke, or the answer was not valid HTTP."""


class _Connection(asyncio.Protocol):
    def __init__(self, pool: _Pool) -> None:
        self.loop = asyncio.get_running_loop()  # (made by create_connection: once, not per call)
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
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
        self.waiter: asyncio.Future | None = None
        self.headers_done = False

    # --- asyncio.Protocol ---
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received = True
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


class _Pool:
    def __init__(self, scheme: str, host: str, port: int) -> None:
        self.scheme, self.host, self.port = scheme, host, port
        self.idle: list[_Connection] = []

    def get(self) -> _Connection | None:
        now = time.monotonic()
        while self.idle:
            connection = self.idle.pop()
            if not connection.closed and now - connection.idle_since < IDLE_SECONDS:
                return connection
            connection.abort()
        return None

    def put(self, connection: _Connection) -> None:
        if len(self.idle) < MAX_IDLE_PER_HOST:
            self.idle.append(connection)
        else:
            connection.abort()

    async def connect(self, seconds: float) -> _Connection:
        loop = asyncio.get_running_loop()
        tls = _TLS if self.scheme == "https" else None
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(self),
                    self.host,
                    self.port,
                    ssl=tls,
                    server_hostname=self.host if tls else None,
                ),
                seconds,
            )
        except TimeoutError:
            # Nothing was sent: as safe to retry elsewhere as a refused connection.
            raise UpstreamConnectError("connect timed out") from None
        except (OSError, ssl.SSLError) as exc:
            raise UpstreamConnectError(type(exc).__name__) from None
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
                if self._decoder is not None:
                    chunk = self._decoder.decompress(chunk)
                if chunk:
                    return chunk
            elif connection.complete:
                self._done = True
                if self._decoder is not None:
                    tail, self._decoder = self._decoder.flush(), None
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
            body = self._decoder.decompress(body) + self._decoder.flush()
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
    """One per event loop. `request` returns once the status line and headers are in."""

    def __init__(self) -> None:
        self._pools: dict[tuple[str, str, int], _Pool] = {}
        # Deployment URLs repeat call after call: each is parsed once (a bounded cache).
        self._targets: dict[str, tuple[_Pool, str]] = {}

    def _pool(self, url: str) -> tuple[_Pool, str]:
        found = self._targets.get(url)
        if found is not None:
            return found
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise UpstreamConnectError(f"unsupported URL scheme {scheme!r}")
        port = parts.port or (443 if scheme == "https" else 80)
        key = (scheme, parts.hostname, port)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _Pool(scheme, parts.hostname, port)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        if len(self._targets) >= MAX_PARSED_URLS:
            self._targets.clear()
        found = self._targets[url] = (pool, target)
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
    ) -> Response:
        pool, target = self._pool(url)
        default_port = 443 if pool.scheme == "https" else 80
        host = pool.host if pool.port == default_port else f"{pool.host}:{pool.port}"
        lines = [f"{method} {target} HTTP/1.1", f"host: {host}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"content-length: {len(body or b'')}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        while True:
            connection = pool.get()
            reused = connection is not None
            if connection is None:
                connection = await pool.connect(connect_timeout)
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
