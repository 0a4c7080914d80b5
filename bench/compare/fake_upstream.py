#!/usr/bin/env python3
"""Fast fake OpenAI-compatible upstream for gateway benchmarks.

One process, uvloop + httptools, pre-encoded canned responses, no JSON parsing
(the request body is only scanned with two byte regexes).  On 1 core it serves
well over 10x what a Python gateway can push, so it is not the bottleneck
(check: the "direct" column of `make bench` is this server measured alone).

Routes
  POST /v1/chat/completions   non-streaming chat.completion JSON with usage;
                              if the body has "stream": true -> SSE: role chunk,
                              N content chunks, finish chunk, [usage chunk if
                              stream_options.include_usage], data: [DONE]
  POST /v1/embeddings         one 1536-float vector (base64 if the request
                              asks encoding_format "base64", as the openai SDK does)
  GET  /v1/models             model list
  GET  /health                200 ok
  GET  /__bench/config?latency_ms=50&chunk_delay_ms=0   change delays at run time
  GET  /__bench/stats         request counters (JSON); ?reset=1 zeroes them

Delays (model a real provider):
  latency_ms      added before the response (non-streaming) or before the first
                  SSE byte (streaming) -> time to first token
  chunk_delay_ms  between SSE events after the first one
Paths may also be given without the /v1 prefix.
"""

import argparse
import asyncio
import base64
import json
import random
import re
import struct
import sys
from collections.abc import Callable
from typing import TypedDict, TypeVar, cast

try:
    import httptools
except ImportError:  # pragma: no cover
    sys.exit("fake_upstream needs httptools (pip install httptools uvloop)")

CFG = {"latency_ms": 0.0, "chunk_delay_ms": 0.0}
STATS = {"chat": 0, "stream": 0, "embeddings": 0, "models": 0, "other": 0}
_T = TypeVar("_T")
CREATED = 1735689600
MODEL = "gpt-4o-2024-08-06"

RE_STREAM = re.compile(rb'"stream"\s*:\s*true')
RE_USAGE = re.compile(rb'"include_usage"\s*:\s*true')
RE_B64 = re.compile(rb'"encoding_format"\s*:\s*"base64"')

ANSWER = (
    "Sure! Here is a short overview. An API gateway sits between clients and "
    "model providers: it authenticates the caller, applies rate limits and "
    "quotas, picks a provider, forwards the request, streams the answer back, "
    "and records usage for billing."
)
USAGE = {
    "prompt_tokens": 42,
    "completion_tokens": 58,
    "total_tokens": 100,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 0,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}


# Every response pre-encoded: whole HTTP responses, or a stream's head, chunks and end.
Canned = TypedDict(
    "Canned",
    {
        "chat": bytes,
        "stream_head": bytes,
        "stream": list[bytes],
        "stream_usage": list[bytes],
        "stream_end": bytes,
        "emb_float": bytes,
        "emb_b64": bytes,
        "models": bytes,
        "health": bytes,
        "404": bytes,
    },
)


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _response(body: bytes, ctype: bytes = b"application/json", status: bytes = b"200 OK") -> bytes:
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\nContent-Type: "
        + ctype
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\nConnection: keep-alive\r\nopenai-processing-ms: 1\r\n\r\n"
        + body
    )


def build_canned(n_chunks: int) -> Canned:
    chat = _dumps(
        {
            "id": "chatcmpl-bench0000000000000000000000",
            "object": "chat.completion",
            "created": CREATED,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": ANSWER,
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": USAGE,
            "service_tier": "default",
            "system_fingerprint": "fp_bench0001",
        }
    )

    words = ANSWER.split(" ")
    n = max(1, min(n_chunks, len(words)))
    pieces = [
        " ".join(words[i * len(words) // n : (i + 1) * len(words) // n]) + " " for i in range(n)
    ]

    def chunk(
        delta: dict[str, str | None],
        finish: str | None = None,
        with_usage: bool = False,
        choices: bool = True,
    ) -> bytes:
        c: dict[str, object] = {
            "id": "chatcmpl-bench0000000000000000000000",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": MODEL,
            "service_tier": "default",
            "system_fingerprint": "fp_bench0001",
            "choices": (
                [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
                if choices
                else []
            ),
        }
        if with_usage:
            c["usage"] = None
        return b"data: " + _dumps(c) + b"\n\n"

    def events(include_usage: bool) -> list[bytes]:
        ev = [
            chunk({"role": "assistant", "content": "", "refusal": None}, with_usage=include_usage)
        ]
        ev += [chunk({"content": p}, with_usage=include_usage) for p in pieces]
        ev.append(chunk({}, finish="stop", with_usage=include_usage))
        if include_usage:
            last = json.loads(chunk({}, with_usage=True, choices=False)[6:])
            last["usage"] = USAGE
            ev.append(b"data: " + _dumps(last) + b"\n\n")
        ev.append(b"data: [DONE]\n\n")
        return [b"%x\r\n%s\r\n" % (len(e), e) for e in ev]  # HTTP/1.1 chunked framing

    rnd = random.Random(1536)
    vec = [round(rnd.uniform(-0.08, 0.08), 10) for _ in range(1536)]

    def emb(data: list[float] | str) -> bytes:
        return _dumps(
            {
                "object": "list",
                "data": [{"object": "embedding", "index": 0, "embedding": data}],
                "model": "text-embedding-3-small",
                "usage": {"prompt_tokens": 8, "total_tokens": 8},
            }
        )

    b64 = base64.b64encode(struct.pack("<1536f", *vec)).decode()
    models = _dumps(
        {
            "object": "list",
            "data": [
                {"id": m, "object": "model", "created": CREATED, "owned_by": "system"}
                for m in ("gpt-4o", "gpt-4o-mini", "text-embedding-3-small")
            ],
        }
    )
    stream_head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n"
        b"Cache-Control: no-cache\r\n\r\n"
    )
    return {
        "chat": _response(chat),
        "stream_head": stream_head,
        "stream": events(False),
        "stream_usage": events(True),
        "stream_end": b"0\r\n\r\n",
        "emb_float": _response(emb(vec)),
        "emb_b64": _response(emb(b64)),
        "models": _response(models),
        "health": _response(b'{"status":"ok"}'),
        "404": _response(
            b'{"error":{"message":"not found","type":"invalid_request_error"}}',
            status=b"404 Not Found",
        ),
    }


CANNED: Canned  # built by main, before the server starts


class Proto(asyncio.Protocol):
    """One client connection: requests parsed by httptools, answered from CANNED."""

    __slots__ = ("body", "closed", "loop", "p", "t", "url")
    t: asyncio.Transport  # set by connection_made, before any request arrives

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.closed = False
        self.url = b""
        self.body: list[bytes] = []
        self.p = httptools.HttpRequestParser(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def data_received(self, data: bytes) -> None:
        try:
            self.p.feed_data(data)
        except Exception:
            self.t.close()
            self.closed = True

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, b: bytes) -> None:
        self.body.append(b)

    def on_message_complete(self) -> None:
        method = self.p.get_method()
        path = self.url.split(b"?", 1)[0]
        if path.startswith(b"/v1/"):
            path = path[3:]
        lat = CFG["latency_ms"] / 1000.0
        if method == b"POST" and path == b"/chat/completions":
            body = b"".join(self.body)
            if RE_STREAM.search(body):
                STATS["stream"] += 1
                evs = CANNED["stream_usage"] if RE_USAGE.search(body) else CANNED["stream"]
                self._later(lat, self._stream, evs)
                return
            STATS["chat"] += 1
            self._later(lat, self._write, CANNED["chat"])
        elif method == b"POST" and path == b"/embeddings":
            STATS["embeddings"] += 1
            body = b"".join(self.body)
            self._later(lat, self._write, CANNED["emb_b64" if RE_B64.search(body) else "emb_float"])
        elif path == b"/models":
            STATS["models"] += 1
            self._write(CANNED["models"])
        elif path == b"/health":
            self._write(CANNED["health"])
        elif path == b"/__bench/config":
            q = self.url.split(b"?", 1)
            if len(q) == 2:
                for kv in q[1].decode().split("&"):
                    k, _, v = kv.partition("=")
                    if k in CFG:
                        CFG[k] = float(v)
            self._write(_response(_dumps(CFG)))
        elif path == b"/__bench/stats":
            out = _response(_dumps(STATS))
            if b"reset=1" in self.url:
                for k in STATS:
                    STATS[k] = 0
            self._write(out)
        else:
            STATS["other"] += 1
            self._write(CANNED["404"])

    def _later(self, delay: float, fn: Callable[[_T], None], arg: _T) -> None:
        if delay > 0:
            self.loop.call_later(delay, fn, arg)
        else:
            fn(arg)

    def _write(self, data: bytes) -> None:
        if not self.closed:
            self.t.write(data)

    def _stream(self, evs: list[bytes]) -> None:
        if self.closed:
            return
        gap = CFG["chunk_delay_ms"] / 1000.0
        if gap <= 0:
            self.t.write(CANNED["stream_head"] + b"".join(evs) + CANNED["stream_end"])
            return
        self.t.write(CANNED["stream_head"] + evs[0])
        self._stream_rest(evs, 1, gap)

    def _stream_rest(self, evs: list[bytes], i: int, gap: float) -> None:
        if self.closed:
            return
        if i >= len(evs):
            self.t.write(CANNED["stream_end"])
            return
        self.loop.call_later(gap, self._next, evs, i, gap)

    def _next(self, evs: list[bytes], i: int, gap: float) -> None:
        if self.closed:
            return
        self.t.write(evs[i])
        self._stream_rest(evs, i + 1, gap)


def main() -> None:
    global CANNED
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18000)
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--chunk-delay-ms", type=float, default=0.0)
    ap.add_argument("--chunks", type=int, default=20, help="content chunks per stream (default 20)")
    ap.add_argument("--no-uvloop", action="store_true")
    a = ap.parse_args()
    CFG["latency_ms"] = a.latency_ms
    CFG["chunk_delay_ms"] = a.chunk_delay_ms
    CANNED = build_canned(a.chunks)
    if not a.no_uvloop:
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            print("uvloop not installed; using asyncio's default loop", file=sys.stderr)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    srv = loop.run_until_complete(
        loop.create_server(lambda: Proto(loop), a.host, a.port, backlog=4096)
    )
    print(
        f"fake upstream on http://{a.host}:{a.port}/v1 latency_ms={a.latency_ms} "
        f"chunk_delay_ms={a.chunk_delay_ms} loop={type(loop).__module__}",
        flush=True,
    )
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.close()


if __name__ == "__main__":
    main()
