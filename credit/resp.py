"""A minimal Redis client for the scripts every /v1 call runs (reserve, settle).

Why not redis-py here: after 50 ms of idleness (a call waiting on its provider) a
redis.asyncio round trip took 0.45 ms at the median on this VM, against 0.16 ms for the
same PING over a bare asyncio Protocol with the hiredis parser:
redis-py's layers (pool, command packing, response callbacks, retries) run cold. A call
makes two round trips, so this is most of the gateway's own latency at a 50 ms upstream.

One connection per event loop carries every request's commands, pipelined: Redis answers
a connection's commands in order, so replies are matched to a FIFO of futures. A reply
that does not come within the timeout, or a broken connection, fails every pending
command (the connection cannot be trusted to stay in step) and the next call reconnects.
The gateway's key lookups use it too. Everything off the hot path uses redis-py
(credit/connections.py makes both, from the same settings).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import ssl
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import hiredis

from credit import redis_options
from credit.records import CreditUnavailable
from credit.scripts import Script

Arg = bytes | str | int
# Error replies of a server that cannot serve now (loading its AOF, failing over, out of
# memory under `noeviction`, unable to persist, not allowed to): the call fails closed
# and may be retried.
NOT_READY = frozenset(
    {"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "READONLY", "OOM", "MISCONF"}
    | {"NOREPLICAS", "NOPERM", "NOAUTH", "WRONGPASS"}
)
# ...of which those that say this server is not (or not yet) a primary that can serve: the
# connection is replaced by a new one (to whatever the URL or the sentinels name now).
RECONNECT = frozenset({"READONLY", "LOADING", "MASTERDOWN"})
_SCRIPT_ERROR = re.compile(r"^ERR Error running script.*?: -([A-Z]+) ")
# A connection being made: asyncio's create_connection / create_unix_connection.
_Connecting = Awaitable[tuple[asyncio.BaseTransport, "_Connection"]]
BACKOFF = 0.025  # seconds before the 2nd attempt to connect, doubling up to MAX_BACKOFF
MAX_BACKOFF = 1.0


class RedisUnavailable(CreditUnavailable):
    """Redis could not be reached, did not answer in time, or cannot serve now."""


class RedisReplyError(Exception):
    """Redis answered with an error (a script error, a wrong type, ...)."""


# One command in RESP (an array of bulk strings): hiredis's packer, in C, three times
# faster than the same in Python on this hot path (two scripts per call).
# (hiredis's stub types the command as a 1-tuple; it takes any number of arguments)
pack = cast(Callable[[tuple[Arg, ...]], bytes], hiredis.pack_command)


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()  # (made by create_connection: once, not per call)
        self.reader = hiredis.Reader()
        self.pending: deque[asyncio.Future[Any]] = deque()
        self.outgoing: list[bytes] = []
        # Set by connection_made, which runs before create_connection hands this object out.
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.closed = False
        self.scripts: set[str] = set()  # digests this connection has run (loaded on the server)
        self.flushed: asyncio.Future[Any] | None = None  # resolved when the queued commands leave
        self.writes = 0  # how many writes have left; the queued commands go with the next
        self.retired = False  # the server cannot serve: replies awaited, nothing new sent

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            future = self.pending.popleft()
            if not future.done():
                future.set_result(reply)
        if self.retired and not self.pending:
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.fail(RedisUnavailable("the Redis connection was lost"))

    def fail(self, error: Exception) -> None:
        while self.pending:
            future = self.pending.popleft()
            if not future.done():
                future.set_exception(error)

    def send(self, raw: bytes, *, eager: bool = False) -> asyncio.Future[Any]:
        """Queue a command; its reply resolves the returned future.

        Commands issued in the same turn of the loop leave in one write (one syscall): under
        load many requests reserve and settle at once. An `eager` command on an idle
        connection (no reply outstanding) is written at once instead, so that Redis works
        on it while this process goes on (Nagle's rule, per loop turn).
        """
        loop = self.loop
        future = loop.create_future()
        idle = not self.pending and not self.outgoing
        self.pending.append(future)
        self.outgoing.append(raw)
        if eager and idle:
            self.flush()
        elif len(self.outgoing) == 1:
            self.flushed = loop.create_future()
            loop.call_soon(self.flush)
        return future

    def flush(self) -> None:
        if self.outgoing and not self.closed:
            self.transport.write(b"".join(self.outgoing))
            self.writes += 1
        self.outgoing.clear()
        if self.flushed is not None and not self.flushed.done():
            self.flushed.set_result(None)

    def written(self, write: int) -> bool:
        """That write has left this process: it is in the kernel's hands."""
        return (
            not self.closed and self.writes >= write and not self.transport.get_write_buffer_size()
        )

    def close(self) -> None:
        """Close it (nothing is pending on it)."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def retire(self) -> None:
        """No new commands on this connection: those on their way still get their replies
        (a retired connection closes when it has none outstanding)."""
        self.retired = True
        if not self.pending:
            self.close()

    def abort(self) -> None:
        """Out of step with the server: drop the connection and everything pending on it."""
        self.closed = True
        if self.flushed is not None and not self.flushed.done():
            self.flushed.set_result(None)
        if self.transport is not None:
            self.transport.abort()
        self.fail(RedisUnavailable("Redis did not answer in time"))


class FastRedis:
    """The hot path's client for one event loop: one connection, reopened when lost.

    A server that answers READONLY, LOADING or MASTERDOWN is no primary that can serve
    (a failover moved the primary away, or it is restarting): the connection is retired
    (the commands already on it get their answers, no new ones are sent on it) and the
    next command reconnects, asking the sentinels again with a Sentinel URL, or the
    URL's name again (a managed Redis's DNS name moves to the new primary). Failed
    connection attempts are spaced by a short backoff, during which commands fail at
    once with RedisUnavailable (the caller answers 503 with Retry-After).
    """

    def __init__(
        self,
        url: str | redis_options.RedisTarget,
        *,
        timeout: float = 5.0,
        connect_timeout: float = 2.0,
        loop: asyncio.AbstractEventLoop | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ):
        target = redis_options.parse(url) if isinstance(url, str) else url
        self.target = target
        self.host, self.port = target.host, target.port  # (Sentinel: the last primary seen)
        if ssl_context is None and target.tls is not None:
            ssl_context = target.tls.context()
        self.ssl = ssl_context
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.loop = loop  # the loop this client serves (connections.fast's)
        self._connection: _Connection | None = None
        self._connecting: asyncio.Future[_Connection] | None = None
        self._failures = 0  # connection attempts failed in a row
        self._retry_at = 0.0  # no attempt before (loop time)

    def node(self, host: str, port: int) -> FastRedis:
        """A client of the same URL (credentials, TLS context, time-outs) for another
        server: one node of a Redis Cluster, each with its own connection."""
        target = dataclasses.replace(self.target, host=host, port=port, sentinels=(), path=None)
        return FastRedis(
            target,
            timeout=self.timeout,
            connect_timeout=self.connect_timeout,
            loop=self.loop,
            ssl_context=self.ssl,
        )

    async def open_connection(self, host: str, port: int) -> _Connection:
        """One connection to one server of this client's URL, ready for commands: TCP
        (TLS as the URL says), AUTH, SELECT. RedisUnavailable when it cannot be had
        within `connect_timeout`."""
        return await self._set_up(self._tcp(host, port))

    def _tcp(self, host: str, port: int) -> _Connecting:
        return asyncio.get_running_loop().create_connection(
            _Connection, host, port, ssl=self.ssl, server_hostname=host if self.ssl else None
        )

    async def _set_up(self, connect: _Connecting, *, sentinel: bool = False) -> _Connection:
        """Connected (within connect_timeout), logged in, its database selected: to a
        server with the URL's credentials, to a sentinel with the sentinel's."""
        target = self.target
        if sentinel:
            username, password, db = target.sentinel_username, target.sentinel_password, 0
        else:
            username, password, db = target.username, target.password, target.db
        try:
            _, connection = await asyncio.wait_for(connect, self.connect_timeout)
        except (OSError, TimeoutError) as exc:
            raise RedisUnavailable(f"cannot connect to Redis: {exc}") from None
        setup: list[tuple[Arg, ...]] = []
        if password:
            setup.append(("AUTH", *([username] if username else []), password))
        if db:
            setup.append(("SELECT", db))
        for command in setup:
            reply = await self._wait(connection, connection.send(pack(command)))
            if isinstance(reply, hiredis.ReplyError):
                connection.abort()
                raise RedisUnavailable(f"Redis refused {command[0]!s}: {reply}")
        return connection

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        if loop.time() < self._retry_at:
            raise RedisUnavailable("Redis unreachable; reconnecting shortly")
        try:
            if self.target.path:
                connect = loop.create_unix_connection(_Connection, self.target.path)
                connection = await self._set_up(connect)
            elif self.target.uses_sentinel:
                connection = await self._connect_to_primary()
            else:
                connection = await self.open_connection(self.host, self.port)
        except RedisUnavailable:
            self._failures += 1
            self._retry_at = loop.time() + min(MAX_BACKOFF, BACKOFF * 2 ** (self._failures - 1))
            raise
        self._failures = 0
        return connection

    async def _connect_to_primary(self) -> _Connection:
        """The primary the sentinels name, checked to be one (a sentinel may not have
        noticed a failover yet)."""
        host, port = await self._ask_sentinels()
        connection = await self.open_connection(host, port)
        role = await self._wait(connection, connection.send(pack(("ROLE",))))
        if isinstance(role, hiredis.ReplyError) or not role or role[0] != b"master":
            connection.abort()
            raise RedisUnavailable(f"the server the sentinels name ({host}:{port}) is no primary")
        self.host, self.port = host, port
        return connection

    async def _ask_sentinels(self) -> tuple[str, int]:
        target = self.target
        for host, port in target.sentinels:
            try:
                connection = await self._set_up(self._tcp(host, port), sentinel=True)
            except RedisUnavailable:
                continue
            try:
                command = ("SENTINEL", "get-master-addr-by-name", target.service or "")
                reply = await self._wait(connection, connection.send(pack(command)))
            except RedisUnavailable:
                continue
            finally:
                connection.close()
            if isinstance(reply, list) and len(reply) == 2:
                return reply[0].decode(), int(reply[1])
        raise RedisUnavailable(f"no sentinel named a primary for {target.service!r}")

    @property
    def connected(self) -> bool:
        """Whether a connection is up, as far as this process knows."""
        return self._connection is not None and not self._connection.closed

    async def _ready(self) -> _Connection:
        connection = self._connection
        if connection is not None and not connection.closed and not connection.retired:
            return connection
        if self._connecting is None:  # one connect for all the callers waiting on it
            self._connecting = asyncio.ensure_future(self._connect())
        connecting = self._connecting
        try:
            ready = self._connection = await asyncio.shield(connecting)
        finally:
            if connecting.done():
                self._connecting = None
        return ready

    async def _wait(self, connection: _Connection, future: asyncio.Future[Any]) -> Any:
        timer = connection.loop.call_later(self.timeout, connection.abort)
        try:
            return await future
        finally:
            timer.cancel()

    async def call(self, *args: Arg) -> Any:
        connection = await self._ready()
        return self._checked(connection, await self._wait(connection, connection.send(pack(args))))

    def _checked(self, connection: _Connection, reply: Any) -> Any:
        """The reply, or the error it is; a server that can no longer serve as a primary
        has its connection retired (the next command connects again)."""
        if isinstance(reply, hiredis.ReplyError) and error_code(str(reply)) in RECONNECT:
            connection.retire()
            if self._connection is connection:
                self._connection = None
        return checked(reply)

    async def run_script(self, script: Script, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        """A script, sent with this loop turn's other commands (see ScriptCall)."""
        return await self.send_script(script, keys, args, now=False).reply()

    def send_script(
        self, script: Script, keys: Sequence[Arg], args: Sequence[Arg], *, now: bool = True
    ) -> ScriptCall:
        """Start a script: with `now` and a connection up, its command is queued at once
        (written at once if the connection is idle, else with this loop turn's others);
        `.leave()` waits until it has left this process, `.reply()` for Redis's answer."""
        return ScriptCall(self, script, keys, args, now)

    def close(self) -> None:
        if self._connection is not None and self._connection.transport is not None:
            self._connection.transport.close()
        self._connection = None


class ScriptCall:
    """One script run, sent as soon as a connection is ready and answered later.

    Sent at once when the connection is up: EVALSHA if this connection already ran the
    script, else the whole script with EVAL (which also loads it), so that what was written
    is what runs. A server whose scripts were flushed meanwhile answers NOSCRIPT, and the
    script is sent again in full when the reply is awaited.
    """

    __slots__ = ("_args", "_client", "_connection", "_future", "_keys", "_script", "_write")

    def __init__(
        self, client: FastRedis, script: Script, keys: Sequence[Arg], args: Sequence[Arg], now: bool
    ) -> None:
        self._client, self._script, self._keys, self._args = client, script, keys, args
        self._connection: _Connection | None = None
        self._future: asyncio.Future[Any] | None = None
        connection = client._connection
        if now and connection is not None and not connection.closed and not connection.retired:
            self._send(connection, eager=True)

    def _send(self, connection: _Connection, *, eager: bool) -> None:
        self._connection = connection
        script = self._script
        if script.sha in connection.scripts:
            command = ("EVALSHA", script.sha, len(self._keys), *self._keys, *self._args)
        else:
            command = ("EVAL", script.source, len(self._keys), *self._keys, *self._args)
            connection.scripts.add(script.sha)  # (commands on a connection run in order)
        self._future = connection.send(pack(command), eager=eager)
        self._write = connection.writes + (1 if connection.outgoing else 0)

    @property
    def written(self) -> bool:
        """The command has left this process."""
        return self._connection is not None and self._connection.written(self._write)

    async def leave(self) -> bool:
        """Wait for the end of this loop turn's write if the command is queued in it;
        whether it has left this process."""
        connection = self._connection
        if connection is None:
            return False
        if connection.writes < self._write and connection.flushed is not None:
            await connection.flushed
        return self.written

    async def reply(self) -> Any:
        client = self._client
        if self._future is None:
            self._send(await client._ready(), eager=False)
        # _send has set _connection and _future (mypy cannot follow that through a method).
        reply = await client._wait(self._connection, self._future)  # type: ignore[arg-type]
        if isinstance(reply, hiredis.ReplyError) and str(reply).startswith("NOSCRIPT"):
            self._connection.scripts.discard(self._script.sha)  # type: ignore[union-attr]
            self._send(await client._ready(), eager=False)
            reply = await client._wait(self._connection, self._future)  # type: ignore[arg-type]
        return client._checked(self._connection, reply)  # type: ignore[arg-type]


def error_code(message: str) -> str:
    """An error reply's code: its first word, or for a script's error on Redis before 7
    ("ERR Error running script ...: -READONLY You can't write ...") the code of the
    command that failed in it."""
    code = message.partition(" ")[0]
    if code == "ERR" and (inner := _SCRIPT_ERROR.search(message)):
        return inner.group(1)
    return code


def checked(reply: Any) -> Any:
    """The reply, or the error it is: RedisUnavailable for a server that cannot serve now."""
    if isinstance(reply, hiredis.ReplyError):
        message = str(reply)
        if error_code(message) in NOT_READY:  # restarting, failing over, full: try later
            raise RedisUnavailable(message)
        raise RedisReplyError(message)
    return reply
