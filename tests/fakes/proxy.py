"""A forward proxy for the egress tests, on loopback in a thread of its own: CONNECT
tunnels (https) and absolute-URI requests (http), Basic proxy authentication when given
credentials. It records what it was asked (`seen`: the request lines) so that a test can
tell a call went through it; an absolute-URI connection is pinned to the first request's
origin, which is all a client that pools per origin needs."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import threading
from collections.abc import Iterator
from urllib.parse import quote, urlsplit


class ForwardProxy:
    def __init__(self, *, user: str = "", password: str = "") -> None:
        self.userinfo = f"{quote(user, safe='')}:{quote(password, safe='')}@" if user else ""
        self.credentials = (
            "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode() if user else ""
        )
        self.seen: list[str] = []
        self.refused = 0
        self.port = 0

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {
            name.strip().lower(): value.strip()
            for name, value in (line.split(":", 1) for line in lines[1:] if ":" in line)
        }
        self.seen.append(lines[0])
        if self.credentials and headers.get("proxy-authorization") != self.credentials:
            self.refused += 1
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n")
            writer.close()
            return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            upstream = await asyncio.open_connection(host.strip("[]"), int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            first = b""
        else:
            origin = urlsplit(target)
            upstream = await asyncio.open_connection(
                origin.hostname, origin.port or 80
            )  # the request goes on in origin form, without the proxy's own header
            path = origin.path + (f"?{origin.query}" if origin.query else "")
            kept = [
                line for line in lines[1:] if not line.lower().startswith("proxy-authorization:")
            ]
            first = "\r\n".join([f"{method} {path} HTTP/1.1", *kept]).encode("latin-1")
        upstream_reader, upstream_writer = upstream
        upstream_writer.write(first)
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    @contextlib.contextmanager
    def serving(self) -> Iterator[str]:
        """The proxy's URL (with the credentials, if any) while it serves."""
        loop = asyncio.new_event_loop()
        started = threading.Event()
        stop = asyncio.Event()
        handlers: set[asyncio.Task] = set()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            handlers.add(task)  # type: ignore[arg-type]
            try:
                await self._handle(reader, writer)
            finally:
                handlers.discard(task)

        async def run() -> None:
            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            started.set()
            await stop.wait()
            server.close()
            for task in list(handlers):
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)

        thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
        thread.start()
        assert started.wait(10), "the proxy did not start"
        try:
            yield f"http://{self.userinfo}127.0.0.1:{self.port}"
        finally:
            loop.call_soon_threadsafe(stop.set)
            thread.join(timeout=10)
            loop.close()
