"""Raw HTTP/1.1 over a socket, for tests that must send exactly these bytes (a body that
never ends, pipelined requests, Expect: 100-continue) and read exactly what comes back."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=5)


def read_response(
    sock: socket.socket, buffered: bytearray | None = None
) -> tuple[bytes, dict, bytes]:
    """One response (status line, lower-cased headers, body: by its length or chunked) from
    `sock`; what arrives beyond it stays in `buffered` for the next."""
    if buffered is None:
        buffered = bytearray()
    while b"\r\n\r\n" not in buffered:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response head: {bytes(buffered)!r}"
        buffered += chunk
    head, _, rest = bytes(buffered).partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode()] = value.strip().decode()
    del buffered[:]
    buffered += rest
    if "content-length" in headers:
        while len(buffered) < int(headers["content-length"]):
            chunk = sock.recv(65536)
            assert chunk, "connection closed inside a body"
            buffered += chunk
        size = int(headers["content-length"])
        body = bytes(buffered[:size])
        del buffered[:size]
        return status, headers, body
    assert headers.get("transfer-encoding") == "chunked", headers
    body = bytearray()  # type: ignore[assignment]
    while True:
        while b"\r\n" not in buffered:
            buffered += sock.recv(65536)
        size_line, _, _ = bytes(buffered).partition(b"\r\n")
        size = int(size_line, 16)
        while len(buffered) < len(size_line) + 2 + size + 2:
            buffered += sock.recv(65536)
        start = len(size_line) + 2
        body += buffered[start : start + size]
        del buffered[: start + size + 2]
        if size == 0:
            return status, headers, bytes(body)


def chat_head(key: str, *lines: str) -> bytes:
    """The head of a POST to /v1/chat/completions with this key and these extra lines."""
    return "\r\n".join(
        [
            "POST /v1/chat/completions HTTP/1.1",
            "Host: 127.0.0.1",
            f"Authorization: Bearer {key}",
            "Content-Type: application/json",
            *lines,
            "",
            "",
        ]
    ).encode()
