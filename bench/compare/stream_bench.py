#!/usr/bin/env python3
"""Closed-loop streaming load client (asyncio; raw HTTP/1.1 parsed by httptools).

N concurrent workers each send POST /v1/chat/completions with "stream": true
back to back for --duration seconds and measure, per request:
  ttft  = time from sending the request to the first SSE event that carries
          non-empty delta content (the first token a user would see)
  total = time until the stream is fully read (data: [DONE] and chunk end)
A request counts as ok only with HTTP 200, >=1 content event and [DONE].
Prints one line: STREAMJSON {...} (latencies in microseconds, like post.lua).

One keep-alive connection per worker, requests written by hand, responses parsed by
httptools (C): an httpx client measured here collapsed to a few hundred streams/s at
c=16, i.e. it would measure itself rather than the gateway.
"""

import argparse
import asyncio
import json
import re
import time
import urllib.parse
from typing import TypedDict, cast

import httptools

RE_CONTENT = re.compile(rb'"content"\s*:\s*"[^"]')

# One response: status, seconds to first content (None if none came), seconds in all,
# SSE events, the body's last bytes (where [DONE] is looked for), keep-alive.
Response = tuple[int, float | None, float, int, bytes, bool]


class Tally(TypedDict):
    """What the workers of one run add up: latencies of the good streams, and errors."""

    ttft: list[float]
    total: list[float]
    events: int
    err_status: int
    err_timeout: int
    err_other: int
    err_stream: int
    last_error: str


def new_tally() -> Tally:
    return {
        "ttft": [],
        "total": [],
        "events": 0,
        "err_status": 0,
        "err_timeout": 0,
        "err_other": 0,
        "err_stream": 0,
        "last_error": "",
    }


def pct(sorted_vals: list[float], p: float) -> float:
    if not sorted_vals:
        return 0
    k = min(len(sorted_vals) - 1, max(0, round(p / 100.0 * len(sorted_vals) + 0.5) - 1))
    return sorted_vals[k]


class RawConn(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection; one request in flight at a time."""

    t: asyncio.Transport  # set by connection_made, before create_connection returns
    # The response being read, from on_message_begin on: body seen so far while no content
    # has come, seconds to the first content, SSE events, the body's last bytes.
    buf: bytes
    ttft: float | None
    events: int
    tail: bytes

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.fut: asyncio.Future[Response] | None = None
        self.closed = False
        self.p = httptools.HttpResponseParser(self)
        self.t0 = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.fut is not None and not self.fut.done():
            self.fut.set_exception(ConnectionError(f"connection lost: {exc!r}"))

    def data_received(self, data: bytes) -> None:
        try:
            self.p.feed_data(data)
        except Exception as e:
            if self.fut is not None and not self.fut.done():
                self.fut.set_exception(e)
            self.t.close()

    def on_message_begin(self) -> None:
        self.buf = b""
        self.ttft = None
        self.events = 0
        self.tail = b""

    def on_body(self, b: bytes) -> None:
        self.events += b.count(b"data:")
        if self.ttft is None:
            self.buf += b
            if RE_CONTENT.search(self.buf):
                self.ttft = time.perf_counter() - self.t0
                self.buf = b""
        self.tail = (self.tail + b)[-64:]

    def on_message_complete(self) -> None:
        if self.fut is not None and not self.fut.done():
            self.fut.set_result(
                (
                    self.p.get_status_code(),
                    self.ttft,
                    time.perf_counter() - self.t0,
                    self.events,
                    self.tail,
                    self.p.should_keep_alive(),
                )
            )

    def request(self, data: bytes) -> asyncio.Future[Response]:
        self.t0 = time.perf_counter()
        self.fut = self.loop.create_future()
        self.t.write(data)
        return self.fut


async def raw_worker(
    url: str, body: bytes, key: str, deadline: float, request_timeout: float, res: Tally
) -> None:
    loop = asyncio.get_running_loop()
    u = urllib.parse.urlsplit(url)
    if u.hostname is None:
        raise SystemExit(f"--url has no host: {url}")
    host, port = u.hostname, u.port or 80
    path = (u.path or "/") + (("?" + u.query) if u.query else "")
    hdr = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: text/event-stream\r\nUser-Agent: nexeon-bench/1\r\n"
        + (f"Authorization: Bearer {key}\r\n" if key else "")
        + f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    req = hdr + body
    conn: RawConn | None = None
    while time.perf_counter() < deadline:
        try:
            if conn is None or conn.closed:
                opened = loop.create_connection(lambda: RawConn(loop), host, port)
                conn = (await asyncio.wait_for(opened, request_timeout))[1]  # the protocol
            status, ttft, total, events, tail, keep = await asyncio.wait_for(
                conn.request(req), request_timeout
            )
        except TimeoutError:
            res["err_timeout"] += 1
            if conn is not None:
                conn.t.close()
                conn = None
            continue
        except Exception as e:
            res["err_other"] += 1
            res["last_error"] = repr(e)[:200]
            if conn is not None:
                conn.t.close()
            conn = None
            await asyncio.sleep(0.01)
            continue
        if not keep:
            conn.t.close()
            conn = None
        if status != 200:
            res["err_status"] += 1
            res["last_error"] = f"HTTP {status}"
        elif ttft is None or b"[DONE]" not in tail:
            res["err_stream"] += 1
        else:
            res["ttft"].append(ttft)
            res["total"].append(total)
            res["events"] += events
    if conn is not None:
        conn.t.close()


async def main_async(a: argparse.Namespace) -> None:
    with open(a.body_file, "rb") as f:  # noqa: ASYNC230 (read once, before any load)
        body = f.read()

    async def run(deadline: float, r: Tally) -> None:
        await asyncio.gather(
            *[raw_worker(a.url, body, a.key, deadline, a.timeout, r) for _ in range(a.concurrency)]
        )

    if a.warmup > 0:
        await run(time.perf_counter() + a.warmup, new_tally())
    res = new_tally()
    t0 = time.perf_counter()
    await run(t0 + a.duration, res)
    elapsed = time.perf_counter() - t0
    ttft = sorted(res["ttft"])
    tot = sorted(res["total"])
    n = len(tot)
    out = {
        "requests": n,
        "duration_us": int(elapsed * 1e6),
        "rps": n / elapsed if elapsed > 0 else 0,
        "events_per_stream": (res["events"] / n) if n else 0,
        "err_status": res["err_status"],
        "err_timeout": res["err_timeout"],
        "err_other": res["err_other"],
        "err_stream": res["err_stream"],
        "p50_us": int(pct(tot, 50) * 1e6),
        "p90_us": int(pct(tot, 90) * 1e6),
        "p99_us": int(pct(tot, 99) * 1e6),
        "ttft_p50_us": int(pct(ttft, 50) * 1e6),
        "ttft_p90_us": int(pct(ttft, 90) * 1e6),
        "ttft_p99_us": int(pct(ttft, 99) * 1e6),
        "last_error": res["last_error"],
    }
    print("STREAMJSON " + json.dumps(out), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--url", required=True, help="full URL of .../v1/chat/completions")
    ap.add_argument("--body-file", required=True, help='JSON request body with "stream": true')
    ap.add_argument("--key", default="")
    ap.add_argument("-c", "--concurrency", type=int, default=16)
    ap.add_argument("-d", "--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=0.0, help="seconds of unmeasured load first")
    ap.add_argument("--timeout", type=float, default=30.0, help="per-request timeout (s)")
    a = ap.parse_args()
    try:
        import uvloop

        uvloop.run(main_async(a))
    except ImportError:
        asyncio.run(main_async(a))


if __name__ == "__main__":
    main()
