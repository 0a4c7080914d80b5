"""The provider-facing HTTP client, against raw loopback servers that frame answers in
every way HTTP/1.1 allows."""

from __future__ import annotations

import asyncio
import gzip
import ssl

import pytest

from apigateway.upstream_client import Client, UpstreamBroken, UpstreamConnectError
from tests.support import free_port


class RawServer:
    """Answers each request with the next canned bytes (a tuple: piece by piece); counts
    connections."""

    def __init__(
        self,
        answers: list[bytes],
        *,
        close_after_each: bool = False,
        host: str = "127.0.0.1",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.answers = list(answers)
        self.host = host
        self.tls = tls
        self.connections = 0
        self.requests: list[bytes] = []
        self.close_after_each = close_after_each
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                answer = self.answers.pop(0)
                if answer is None:
                    continue  # say nothing (a silent provider)
                for piece in answer if isinstance(answer, tuple) else (answer,):
                    writer.write(piece)  # (a tuple's pieces leave one by one)
                    await writer.drain()
                    if isinstance(answer, tuple):
                        await asyncio.sleep(0.01)
                if self.close_after_each:
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self.handle, self.host, 0, ssl=self.tls)
        port = self.server.sockets[0].getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    async def __aexit__(self, *exc) -> None:
        for writer in self.writers:
            writer.close()
        self.server.close()


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n%s" % (len(body), extra, body)


async def fetch(client: Client, url: str, *, read_timeout: float = 5.0) -> tuple[int, bytes]:
    response = await client.request(
        "POST",
        url + "/v1/x?alt=sse",
        headers={"authorization": "Bearer k"},
        body=b'{"a":1}',
        connect_timeout=2,
        read_timeout=read_timeout,
    )
    try:
        return response.status, await response.read()
    finally:
        response.close()


def test_keep_alive_reuses_one_connection_and_sends_a_well_formed_request():
    server = RawServer([ok(b"one"), ok(b"two")])

    async def run():
        async with server as url:
            client = Client()
            assert await fetch(client, url) == (200, b"one")
            assert await fetch(client, url) == (200, b"two")
            client.close()

    asyncio.run(run())
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /v1/x?alt=sse HTTP/1.1\r\n")
    assert b"authorization: Bearer k\r\n" in first and b"content-length: 7\r\n" in first
    assert first.endswith(b'\r\n\r\n{"a":1}')


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n%s"
        % (len(gzip.compress(b"hello")), gzip.compress(b"hello")),
    ],
    ids=["chunked", "gzip"],
)
def test_answers_are_unframed_and_decoded(answer):
    async def run():
        async with RawServer([answer]) as url:
            client = Client()
            assert await fetch(client, url) == (200, b"hello")
            client.close()

    asyncio.run(run())


GZIPPED_STREAM = gzip.compress(b"data: one\n\ndata: two\n\n")


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        b"b\r\ndata: one\n\n\r\nb\r\ndata: two\n\n\r\n0\r\n\r\n",
        # gzip in chunks of 3 bytes, each sent on its own: some decode to nothing, which is
        # not the end of the stream
        (
            b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n",
            *(
                b"%x\r\n%b\r\n" % (len(GZIPPED_STREAM[i : i + 3]), GZIPPED_STREAM[i : i + 3])
                for i in range(0, len(GZIPPED_STREAM), 3)
            ),
            b"0\r\n\r\n",
        ),
    ],
    ids=["chunked", "gzip"],
)
def test_a_stream_is_read_piece_by_piece_until_none(answer):
    """next_chunk(): what has arrived, never an empty piece, then None (and None again);
    the connection read to its end is kept for the next request."""

    async def run():
        server = RawServer([answer, ok(b"next")])
        async with server as url:
            client = Client()
            response = await client.request(
                "POST", url + "/v1/x", headers={}, body=b"{}", connect_timeout=2, read_timeout=5
            )
            pieces = []
            while (piece := await response.next_chunk()) is not None:
                pieces.append(piece)
            assert await response.next_chunk() is None
            response.close()
            assert all(pieces) and b"".join(pieces) == b"data: one\n\ndata: two\n\n"
            assert await fetch(client, url) == (200, b"next")
            client.close()
        return server.connections

    assert asyncio.run(run()) == 1


def test_a_body_framed_by_the_connections_end():
    async def run():
        server = RawServer([b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end"])
        server.close_after_each = True
        async with server as url:
            client = Client()
            assert await fetch(client, url) == (200, b"until the end")
            client.close()

    asyncio.run(run())


def test_a_pooled_connection_the_server_closed_is_replaced_transparently():
    server = RawServer([ok(b"first"), ok(b"second")], close_after_each=True)

    async def run():
        async with server as url:
            client = Client()
            assert await fetch(client, url) == (200, b"first")
            await asyncio.sleep(0.05)  # the server has closed it; the pool does not know
            assert await fetch(client, url) == (200, b"second")
            client.close()

    asyncio.run(run())
    assert server.connections == 2


def test_a_refused_connection_and_a_silent_provider():
    async def run():
        client = Client()
        with pytest.raises(UpstreamConnectError):
            await fetch(client, f"http://127.0.0.1:{free_port()}")
        async with RawServer([None]) as url:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(TimeoutError):
                await fetch(client, url, read_timeout=0.3)
            assert loop.time() - started < 1.5
        client.close()

    asyncio.run(run())


def test_a_connection_that_breaks_mid_body_is_an_error_not_a_short_answer():
    async def run():
        server = RawServer([b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this"])
        server.close_after_each = True
        async with server as url:
            client = Client()
            with pytest.raises(UpstreamBroken):
                await fetch(client, url)
            client.close()

    asyncio.run(run())


def test_garbage_is_upstream_broken():
    async def run():
        async with RawServer([b"SSH-2.0-OpenSSH\r\n\r\n"]) as url:
            client = Client()
            with pytest.raises(UpstreamBroken):
                await fetch(client, url)
            client.close()

    asyncio.run(run())


def test_a_url_is_parsed_once_and_a_closed_client_starts_afresh(monkeypatch):
    from apigateway import upstream_client

    parsed = []
    real = upstream_client.urlsplit
    monkeypatch.setattr(upstream_client, "urlsplit", lambda url: parsed.append(url) or real(url))
    server = RawServer([ok(b"one"), ok(b"two"), ok(b"three")])

    async def run():
        async with server as url:
            client = Client()
            assert await fetch(client, url) == (200, b"one")
            assert await fetch(client, url) == (200, b"two")
            assert len(parsed) == 1
            client.close()  # the pools go, and with them the parsed URLs that name them
            assert await fetch(client, url) == (200, b"three")
            assert len(parsed) == 2
            client.close()

    asyncio.run(run())
    assert server.requests[2].startswith(b"POST /v1/x?alt=sse HTTP/1.1\r\n")
