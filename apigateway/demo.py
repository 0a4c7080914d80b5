"""The demo model: a provider shipped with the code, so that a server with no provider keys
still answers (`nexeon-demo`, free, on under DEBUG or with GATEWAY_DEMO_MODEL=1).

It stands where a provider's HTTP server would: its routes (apigateway/routing.py) carry
`LOCAL`, which `apigateway.http` asks instead of the network. It reads the OpenAI chat
request the adapter built and answers as OpenAI does (a whole completion, or an SSE stream
of chunks ending with a usage chunk and [DONE]), deterministically: it echoes the last user
message. Everything else (auth, limits, reservation, settlement, usage records, the
Messages and Responses surfaces' translation) is the same as for any model; it costs $0.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from typing import Any

import orjson

from apigateway import ids
from apigateway.catalog import CatalogEntry
from apigateway.providers.base import now

PROVIDER = "demo"
MODEL_ID = "nexeon-demo"
OWNED_BY = "nexeon-demo"
NAME = "NeXeonAI demo (echo)"
BASE_URL = "demo://local"  # never dialled: the routes' `local` answers instead
CONTEXT_WINDOW = 32_000
MAX_OUTPUT_TOKENS = 1_024
PREFIX = "NeXeonAI demo: "
# A token is a word or one punctuation mark (deterministic, close enough to a real count).
_TOKEN = re.compile(r"\w+|[^\w\s]")
_PIECE = re.compile(r"\S+\s*|\s+")  # what a stream sends per chunk: a word and its space
PER_MESSAGE_TOKENS = 3  # a message's role and delimiters, as OpenAI counts them

ENTRY = CatalogEntry(
    id=MODEL_ID,
    provider=PROVIDER,
    upstream_model=MODEL_ID,
    owned_by=OWNED_BY,
    created=1_767_225_600,  # 2026-01-01
    mode="chat",
    context_window=CONTEXT_WINDOW,
    max_output_tokens=MAX_OUTPUT_TOKENS,
    prices={"prompt": "0", "completion": "0"},
)


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


def _text(content: Any) -> str:
    """A message's text: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part.get("text") or ""
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def prompt_tokens(messages: list[Any]) -> int:
    return sum(
        PER_MESSAGE_TOKENS + count_tokens(_text(message.get("content")))
        for message in messages
        if isinstance(message, dict)
    )


def reply(messages: list[Any], cap: int | None) -> tuple[str, int, str]:
    """(the answer, its tokens, finish_reason): the last user message echoed, cut at `cap`
    tokens (finish_reason "length") when it is longer."""
    last = next(
        (
            _text(message.get("content"))
            for message in reversed(messages)
            if isinstance(message, dict) and message.get("role") == "user"
        ),
        "",
    )
    text = PREFIX + (" ".join(last.split()) or "(no user message)")
    limit = max(min(cap or MAX_OUTPUT_TOKENS, MAX_OUTPUT_TOKENS), 1)
    if count_tokens(text) <= limit:
        return text, count_tokens(text), "stop"
    last_kept = list(_TOKEN.finditer(text))[limit - 1]
    return text[: last_kept.end()], limit, "length"


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def completion(body: dict[str, Any]) -> dict[str, Any]:
    messages = body.get("messages") or []
    text, tokens, finish = reply(messages, body.get("max_tokens"))
    n = body.get("n") or 1
    return {
        "id": ids.completion_id(),
        "object": "chat.completion",
        "created": now(),
        "model": MODEL_ID,
        "choices": [
            {
                "index": index,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish,
            }
            for index in range(n)
        ],
        "usage": _usage(prompt_tokens(messages), tokens * n),
    }


def stream_events(body: dict[str, Any]) -> list[bytes]:
    """The SSE events of a streamed answer, as OpenAI sends them."""
    messages = body.get("messages") or []
    text, tokens, finish = reply(messages, body.get("max_tokens"))
    n = body.get("n") or 1
    base = {
        "id": ids.completion_id(),
        "object": "chat.completion.chunk",
        "created": now(),
        "model": MODEL_ID,
    }

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        return b"data: " + orjson.dumps({**base, "choices": choices, **extra}) + b"\n\n"

    events = [
        chunk(
            [
                {"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
                for i in range(n)
            ]
        )
    ]
    for piece in _PIECE.findall(text):
        events.append(
            chunk(
                [{"index": i, "delta": {"content": piece}, "finish_reason": None} for i in range(n)]
            )
        )
    events.append(chunk([{"index": i, "delta": {}, "finish_reason": finish} for i in range(n)]))
    if (body.get("stream_options") or {}).get("include_usage"):
        events.append(chunk([], usage=_usage(prompt_tokens(messages), tokens * n)))
    events.append(b"data: [DONE]\n\n")
    return events


class LocalResponse:
    """What `apigateway.upstream_client.Response` offers, from bytes made here."""

    def __init__(self, status: int, parts: list[bytes], content_type: str) -> None:
        self.status = status
        self.headers = {"content-type": content_type}
        self._parts = parts

    async def next_chunk(self) -> bytes | None:
        await asyncio.sleep(0)  # as a network read would, let other calls run between events
        return self._parts.pop(0) if self._parts else None

    async def read(self) -> bytes:
        body = b"".join(self._parts)
        self._parts = []
        return body

    def close(self) -> None:
        self._parts = []


def _error(status: int, message: str) -> LocalResponse:
    body = orjson.dumps({"error": {"message": message, "type": "invalid_request_error"}})
    return LocalResponse(status, [body], "application/json")


class LocalServer:
    """The demo provider's "server": `request` as `upstream_client.Client.request`."""

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
    ) -> LocalResponse:
        if method != "POST" or not url.endswith("/chat/completions"):
            return _error(404, f"The demo model {MODEL_ID} answers chat completions only.")
        try:
            request = orjson.loads(body or b"{}")
        except orjson.JSONDecodeError:
            return _error(400, "The request body is not JSON.")
        if request.get("stream"):
            return LocalResponse(200, stream_events(request), "text/event-stream")
        return LocalResponse(200, [orjson.dumps(completion(request))], "application/json")


LOCAL = LocalServer()
